"""Checkers for 06_deployment: export with a dynamic batch dimension, and quantize and compare.

Each checker builds its own small digits model, calls the student's function with it and a
fresh temporary folder, then runs the artifact the student wrote in a runtime (ONNX Runtime,
a reloaded SavedModel, LiteRT) and compares with its own computation.
"""

import functools
import tempfile
from pathlib import Path

import numpy as np

from ..checks import Mismatch, exercise, expect_close

BATCHES = (1, 7)

EXPORT_HINT_TORCH = (
    "Pass dynamic_shapes=({0: torch.export.Dim('batch')},) to torch.onnx.export(..., dynamo=True); "
    "without it the example's batch size is fixed in the file."
)
EXPORT_HINT_TF = (
    "Give the serving function an input_signature with tf.TensorSpec([None, 64], tf.float32): "
    "None is the dynamic batch dimension (e.g. model.export(path, input_signature=[...]))."
)
QUANT_HINT_TORCH = (
    "Quantize with onnxruntime.quantization.quantize_dynamic(onnx_path, out_path), run both files "
    "with onnxruntime.InferenceSession on X, take argmax(axis=1) == y, and report "
    "change = quantized_accuracy - float_accuracy."
)
QUANT_HINT_TF = (
    "Convert with tf.lite.TFLiteConverter.from_saved_model, once plain and once with "
    "optimizations=[tf.lite.Optimize.DEFAULT]; run both with ai_edge_litert's Interpreter "
    "(resize the input to len(X)); report change = quantized_accuracy - float_accuracy."
)
QUANT_KEYS = ("float_accuracy", "quantized_accuracy", "change")


def _digits(n=None):
    from ..data import load_digits

    splits = load_digits(seed=0)
    X, y = splits.X_test, splits.y_test
    return (X, y) if n is None else (X[:n], y[:n])


def _accuracy(scores, y):
    return float(np.mean(np.asarray(scores).argmax(axis=1) == np.asarray(y)))


# ------------------------------------------------------------------------------- PyTorch


@functools.lru_cache(maxsize=1)
def _torch_model():
    """A small MLP trained for a few full-batch steps (deterministic, about a second)."""
    import torch

    from ..data import load_digits

    splits = load_digits(seed=0)
    generator = torch.Generator().manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    X, y = torch.from_numpy(splits.X_train), torch.from_numpy(splits.y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model.eval()


def _ort_run(path, X):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(X, np.float32)})[0]


def _check_batches(run, expected_fn, hint, what):
    """Run the artifact for each batch size; raise Mismatch on an error or a wrong answer."""
    X, _ = _digits(max(BATCHES))
    for n in BATCHES:
        try:
            got = run(X[:n])
        except Exception as err:  # a static batch dimension fails here
            message = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            raise Mismatch(
                f"the {what} rejected a batch of {n} rows (its batch dimension is not dynamic)",
                f"scores of shape ({n}, 10)",
                f"{type(err).__name__}: {message}",
                hint,
            ) from None
        expect_close(
            f"the {what}'s outputs for a batch of {n} rows (vs the original model)",
            got,
            expected_fn(X[:n]),
            rtol=1e-4,
            atol=1e-5,
            hint=hint,
        )


@exercise(
    "06_deployment.pytorch.export_dynamic",
    "Export to ONNX with a dynamic batch dimension",
    hint=EXPORT_HINT_TORCH,
)
def export_dynamic_torch(export_onnx):
    import torch

    model = _torch_model()
    example = torch.from_numpy(_digits(4)[0])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "student.onnx"
        export_onnx(model, example, path)
        if not path.is_file():
            raise Mismatch(
                "no ONNX file was written", f"a file at {path.name}", "nothing", EXPORT_HINT_TORCH
            )

        def original(X):
            with torch.no_grad():
                return model(torch.from_numpy(X)).numpy()

        _check_batches(lambda X: _ort_run(path, X), original, EXPORT_HINT_TORCH, "ONNX file")
    return f"ONNX Runtime ran your file with batch sizes {BATCHES} and matched the model."


def _check_quant_dict(got, expected, hint):
    if not isinstance(got, dict):
        raise Mismatch(
            "the function should return a dict",
            f"keys {list(QUANT_KEYS)}",
            type(got).__name__,
            hint,
        )
    missing = [k for k in QUANT_KEYS if k not in got]
    if missing:
        raise Mismatch(f"the dict lacks {missing}", list(QUANT_KEYS), sorted(map(str, got)), hint)
    values = {k: float(got[k]) for k in QUANT_KEYS}
    expect_close(
        "float_accuracy (the unquantized model's test accuracy, within one test digit)",
        values["float_accuracy"],
        expected["float_accuracy"],
        rtol=0,
        atol=0.004,
        hint=hint,
    )
    expect_close(
        "quantized_accuracy (within 0.02 of the checker's own quantized model)",
        values["quantized_accuracy"],
        expected["quantized_accuracy"],
        rtol=0,
        atol=0.02,
        hint=hint,
    )
    expect_close(
        "change = quantized_accuracy - float_accuracy (your own two numbers)",
        values["change"],
        values["quantized_accuracy"] - values["float_accuracy"],
        rtol=0,
        atol=1e-6,
        hint=hint,
    )
    return (
        f"float {values['float_accuracy']:.3f} -> quantized {values['quantized_accuracy']:.3f} "
        f"(change {values['change']:+.3f})."
    )


@exercise(
    "06_deployment.pytorch.quantize_and_compare",
    "Quantize an ONNX model and report the accuracy change",
    hint=QUANT_HINT_TORCH,
)
def quantize_torch(quantize_and_compare):
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..export import quiet_native

    X, y = _digits()
    model = _torch_model()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        onnx_path = folder / "model.onnx"
        with quiet_native():
            torch.onnx.export(
                model,
                (torch.from_numpy(X[:4]),),
                onnx_path,
                dynamo=True,
                external_data=False,
                verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
            quantize_dynamic(onnx_path, folder / "checker_int8.onnx", weight_type=QuantType.QInt8)
        expected = {
            "float_accuracy": _accuracy(_ort_run(onnx_path, X), y),
            "quantized_accuracy": _accuracy(_ort_run(folder / "checker_int8.onnx", X), y),
        }
        student = folder / "student"
        student.mkdir()
        got = quantize_and_compare(onnx_path, X, y, student)
    return _check_quant_dict(got, expected, QUANT_HINT_TORCH)


# ---------------------------------------------------------------------------- TensorFlow


@functools.lru_cache(maxsize=1)
def _keras_model():
    """A small Keras MLP trained for a few full-batch steps (deterministic, about a second)."""
    import keras

    from ..data import load_digits

    splits = load_digits(seed=0)
    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(splits.X_train, splits.y_train, batch_size=len(splits.y_train), epochs=60, verbose=0)
    return model


def _signature_runner(folder):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    if "serving_default" not in loaded.signatures:
        raise Mismatch(
            "the SavedModel has no serving_default signature",
            "['serving_default', ...]",
            sorted(loaded.signatures),
            EXPORT_HINT_TF,
        )
    fn = loaded.signatures["serving_default"]
    (name, spec), *_ = fn.structured_input_signature[1].items()
    if spec.shape.rank is None or spec.shape.rank < 1 or spec.shape[0] is not None:
        # A loaded signature may still run other batch sizes in eager calls, but servers and
        # converters read the declared shape: the batch dimension must be declared None.
        raise Mismatch(
            "the serving signature declares a fixed batch size",
            "an input TensorSpec of shape (None, 64)",
            repr(spec),
            EXPORT_HINT_TF,
        )

    def run(X):
        out = fn(**{name: tf.constant(X)})
        return next(iter(out.values())).numpy()

    run.keep_alive = loaded  # the signature needs its SavedModel object alive
    return run


@exercise(
    "06_deployment.tensorflow.export_dynamic",
    "Export a SavedModel with a dynamic batch dimension",
    hint=EXPORT_HINT_TF,
)
def export_dynamic_tf(export_savedmodel):
    model = _keras_model()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "student_savedmodel"
        export_savedmodel(model, path)
        if not (path / "saved_model.pb").is_file():
            raise Mismatch(
                "no SavedModel was written",
                f"{path.name}/saved_model.pb",
                "nothing",
                EXPORT_HINT_TF,
            )
        run = _signature_runner(path)
        _check_batches(
            run, lambda X: model(X, training=False).numpy(), EXPORT_HINT_TF, "serving signature"
        )
    return f"the reloaded serving signature ran batch sizes {BATCHES} and matched the model."


@exercise(
    "06_deployment.tensorflow.quantize_and_compare",
    "Quantize with LiteRT and report the accuracy change",
    hint=QUANT_HINT_TF,
)
def quantize_tf(quantize_and_compare):
    import tensorflow as tf

    from ..export import litert_predictor, quiet_native

    X, y = _digits()
    model = _keras_model()
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "savedmodel"
        with quiet_native():
            model.export(
                saved,
                verbose=False,
                input_signature=[tf.TensorSpec([None, 64], tf.float32, name="pixels")],
            )
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            quantized = converter.convert()
        expected = {
            "float_accuracy": _accuracy(model(X, training=False).numpy(), y),
            "quantized_accuracy": _accuracy(litert_predictor(quantized)(X), y),
        }
        got = quantize_and_compare(saved, X, y)
    return _check_quant_dict(got, expected, QUANT_HINT_TF)

"""Checkers for 06_deployment: export with a dynamic batch dimension, quantize and compare, and
lower to the edge runtime.

Each checker builds its own small digits model, calls the student's function with it and a
fresh temporary folder, then runs the artifact the student wrote in a runtime (ONNX Runtime,
a reloaded SavedModel, ExecuTorch, LiteRT) and compares with its own computation.

A checker must give the same verdict on any CPU: outputs of two runtimes are compared with a
tolerance of many float32 roundings, accuracies within one test digit or by running the very
file the student wrote, and messages that are shown on success print no float that depends on
the CPU's rounding.
"""

import functools
import tempfile
from pathlib import Path

import numpy as np

from ..checks import Mismatch, exercise, expect_close
from ..export import example_share

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
    "Quantize with onnxruntime.quantization.quantize_dynamic(onnx_path, work / 'int8.onnx', "
    "reduce_range=True), run both files "
    "with onnxruntime.InferenceSession on X, take argmax(axis=1) == y, and report "
    "change = quantized_accuracy - float_accuracy."
)
QUANT_HINT_TF = (
    "Convert with tf.lite.TFLiteConverter.from_saved_model, once plain and once with "
    "optimizations=[tf.lite.Optimize.DEFAULT]; run both with ai_edge_litert's Interpreter "
    "(resize the input to len(X)); report change = quantized_accuracy - float_accuracy."
)
EDGE_HINT_TORCH = (
    "Export with torch.export.export(model, (example,), dynamic_shapes=({0: Dim('batch', max=...)},)) "
    "(ExecuTorch needs an upper bound), lower with to_edge_transform_and_lower(program, "
    "partitioner=[XnnpackPartitioner()]), and write .to_executorch().buffer to the path."
)
EDGE_HINT_TF = (
    "Convert with tf.lite.TFLiteConverter.from_saved_model(saved_model_dir) and no optimizations "
    "(this one is float32), and write the bytes that converter.convert() returns to the path."
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


def _check_batches(run, expected_fn, hint, what, why="its batch dimension is not dynamic"):
    """Run the artifact for each batch size; raise Mismatch on an error or a wrong answer.

    Outputs are compared with rtol 1e-4 and atol 1e-4: two runtimes add in different orders,
    and their float32 results differ by a few roundings of logits of size ~10, on any CPU.
    """
    X, _ = _digits(max(BATCHES))
    for n in BATCHES:
        try:
            got = run(X[:n])
        except Exception as err:  # a static batch dimension fails here
            message = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            raise Mismatch(
                f"the {what} rejected a batch of {n} row{'s' * (n != 1)} ({why})",
                f"scores of shape ({n}, 10)",
                f"{type(err).__name__}: {message}",
                hint,
            ) from None
        expect_close(
            f"the {what}'s outputs for a batch of {n} row{'s' * (n != 1)} (vs the original model)",
            got,
            expected_fn(X[:n]),
            rtol=1e-4,
            atol=1e-4,
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


def _check_quant_dict(got, expected, hint, quantized_atol):
    """Judge a ``{"float_accuracy", "quantized_accuracy", "change"}`` answer; return the message.

    ``expected`` holds the checker's own accuracies. ``float_accuracy`` may differ from the
    checker's by one test digit; ``quantized_accuracy`` by ``quantized_atol``; ``change`` must
    be the answer's own quantized minus float accuracy. Accuracies are fractions in [0, 1].
    """
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
    for key in ("float_accuracy", "quantized_accuracy"):
        if not 0.0 <= values[key] <= 1.0:
            raise Mismatch(
                f"{key} is an accuracy: the fraction of digits classified correctly",
                "a number between 0 and 1",
                repr(values[key]),
                hint,
            )
    expect_close(
        "float_accuracy (the unquantized model's test accuracy, within one test digit)",
        values["float_accuracy"],
        expected["float_accuracy"],
        rtol=0,
        atol=example_share(expected["n"]),
        hint=hint,
    )
    expect_close(
        "quantized_accuracy (the quantized model's test accuracy)",
        values["quantized_accuracy"],
        expected["quantized_accuracy"],
        rtol=0,
        atol=quantized_atol,
        hint=hint,
    )
    expect_close(
        "change = quantized_accuracy - float_accuracy (your own two numbers)",
        values["change"],
        values["quantized_accuracy"] - values["float_accuracy"],
        rtol=0,
        atol=1e-9,
        hint=hint,
    )
    return "both accuracies match the checker's, and change = quantized minus float."


def _integer_weights(path):
    """Return the number of int8/uint8 weights (initializers) in an ONNX file."""
    import onnx

    model = onnx.load(str(path))
    small = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    return sum(1 for t in model.graph.initializer if t.data_type in small)


@exercise(
    "06_deployment.pytorch.quantize_and_compare",
    "Quantize an ONNX model and report the accuracy change",
    hint=QUANT_HINT_TORCH,
)
def quantize_torch(quantize_and_compare):
    import torch

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
        student = folder / "student"
        student.mkdir()
        got = quantize_and_compare(onnx_path, X, y, student)
        written = sorted(p.name for p in student.glob("*.onnx"))
        if len(written) != 1:
            raise Mismatch(
                "the folder `work` should hold your quantized ONNX file",
                "one .onnx file",
                written or "no .onnx file",
                QUANT_HINT_TORCH,
            )
        quantized = student / written[0]
        if not _integer_weights(quantized):
            raise Mismatch(
                f"{written[0]} is not quantized: all its weights are still float32",
                "int8 or uint8 weights (quantize_dynamic writes them)",
                "float32 weights only",
                QUANT_HINT_TORCH,
            )
        expected = {  # the checker runs the same two files as the answer, on the same rows
            "float_accuracy": _accuracy(_ort_run(onnx_path, X), y),
            "quantized_accuracy": _accuracy(_ort_run(quantized, X), y),
            "n": len(y),
        }
    return _check_quant_dict(got, expected, QUANT_HINT_TORCH, example_share(len(y)))


@exercise(
    "06_deployment.pytorch.lower_to_edge",
    "Lower a model to an ExecuTorch program for XNNPACK",
    hint=EDGE_HINT_TORCH,
)
def edge_torch(lower_to_pte):
    import torch

    from ..export import executorch_predictor, quiet_native

    model = _torch_model()
    example = torch.from_numpy(_digits(4)[0])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "student.pte"
        lower_to_pte(model, example, path)
        if not path.is_file():
            raise Mismatch(
                "no .pte file was written", f"a file at {path.name}", "nothing", EDGE_HINT_TORCH
            )
        data = path.read_bytes()
        if b"XnnpackBackend" not in data:
            raise Mismatch(
                "the program was not lowered to XNNPACK",
                "a .pte holding an XnnpackBackend delegate (partitioner=[XnnpackPartitioner()])",
                "a program that runs ExecuTorch's portable kernels only",
                EDGE_HINT_TORCH,
            )
        try:
            predict = executorch_predictor(data)
        except Exception as err:
            raise Mismatch(
                "ExecuTorch could not load the file",
                "a program written by .to_executorch().buffer",
                f"{type(err).__name__}: {str(err).strip()[:160]}",
                EDGE_HINT_TORCH,
            ) from None

        def run(X):
            with quiet_native():  # a refused batch is also logged from C++
                return predict(X)

        def original(X):
            with torch.no_grad():
                return model(torch.from_numpy(X)).numpy()

        _check_batches(
            run,
            original,
            EDGE_HINT_TORCH,
            ".pte program",
            why="its batch dimension is fixed, or its upper bound is too small",
        )
    return f"ExecuTorch ran your .pte (delegated to XNNPACK) with batch sizes {BATCHES} and matched the model."


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
            "n": len(y),
        }
        got = quantize_and_compare(saved, X, y)
    # The answer converts the same SavedModel with the same converter: the same accuracy, or a
    # close one with other settings (0.02: about five test digits).
    return _check_quant_dict(got, expected, QUANT_HINT_TF, 0.02)


def _float_only(path):
    """Return the names of the integer-quantized tensors in a LiteRT model (empty: float)."""
    from ai_edge_litert.interpreter import Interpreter

    from ..export import quiet_native

    with quiet_native():
        interpreter = Interpreter(model_path=str(path))
    return [
        d["name"]
        for d in interpreter.get_tensor_details()
        if np.dtype(d["dtype"]) in (np.dtype(np.int8), np.dtype(np.uint8))
    ]


@exercise(
    "06_deployment.tensorflow.convert_to_edge",
    "Convert a SavedModel to a float32 LiteRT model",
    hint=EDGE_HINT_TF,
)
def edge_tf(convert_to_litert):
    import tensorflow as tf

    from ..export import litert_predictor, quiet_native

    model = _keras_model()
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "savedmodel"
        with quiet_native():
            model.export(
                saved,
                verbose=False,
                input_signature=[tf.TensorSpec([None, 64], tf.float32, name="pixels")],
            )
        path = Path(folder) / "student.tflite"
        convert_to_litert(saved, path)
        if not path.is_file():
            raise Mismatch(
                "no .tflite file was written", f"a file at {path.name}", "nothing", EDGE_HINT_TF
            )
        quantized = _float_only(path)
        if quantized:
            raise Mismatch(
                "the model is quantized: this exercise asks for the float32 model",
                "float32 tensors only (no converter.optimizations)",
                f"{len(quantized)} int8 tensors, e.g. {quantized[0]!r}",
                EDGE_HINT_TF,
            )
        _check_batches(
            litert_predictor(path),
            lambda X: model(X, training=False).numpy(),
            EDGE_HINT_TF,
            "LiteRT model",
        )
    return f"LiteRT ran your .tflite with batch sizes {BATCHES} and matched the model."

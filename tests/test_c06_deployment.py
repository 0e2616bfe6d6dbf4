"""Tests for 06_deployment: stored records of both tracks, the serving module, ONNX parity
in both frameworks, and the exercise checkers (correct, stub, wrong answers)."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from course_utils import export, serving
from course_utils.checks import check
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "06_deployment"


# ------------------------------------------------------------------ stored records, both tracks


@pytest.fixture(scope="module")
def records():
    return {t: by_name(read_records(LESSON / f"{t}.ipynb")) for t in ("pytorch", "tensorflow")}


# Float artifacts must reproduce the original model's outputs to float32 rounding (a few ulps
# of logits of size ~10: 1e-5); quantized artifacts are rounded on purpose, so they get a loose
# bound (dynamic-range int8 weights move logits by well under 0.5 on this model).
THRESHOLDS = {
    "export_max_abs_diff": 1e-5,
    "onnx_max_abs_diff": 1e-5,
    "legacy_max_abs_diff": 1e-5,
    "served_max_abs_diff": 1e-5,
    "dynamic_quant_max_abs_diff": 0.5,
    # Full int8 also rounds activations; stored runs: PyTorch (ONNX Runtime QDQ) ~0.17,
    # TensorFlow (LiteRT) ~1.1, on logits of size ~10. 3.0 is the notebooks' own threshold.
    "int8_max_abs_diff": 3.0,
}


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_each_export_within_threshold_in_both_tracks(records, name):
    for track, values in records.items():
        assert name in values, f"{track} did not record {name}"
        assert 0 <= values[name] < THRESHOLDS[name], (track, name, values[name])


def test_tracks_record_the_same_names_for_shared_quantities(records):
    shared = {
        "test_accuracy",
        "export_max_abs_diff",
        "onnx_max_abs_diff",
        "onnx_size",
        "export_size",
        "dynamic_quant_size",
        "dynamic_quant_accuracy_change",
        "int8_max_abs_diff",
        "int8_accuracy_change",
        "int8_size",
        "int8_latency",
        "onnx_latency",
        "served_max_abs_diff",
        "server_bad_request_statuses",
    }
    for track, values in records.items():
        assert shared <= set(values), (track, shared - set(values))


def test_accuracies_of_both_tracks_above_floor_and_close(records):
    # A few epochs of an MLP on digits reach ~0.95; 0.85 is a floor that catches a broken
    # model, and 0.05 (about 13 of 270 test digits) is how far two frameworks' differently
    # initialised runs may reasonably land apart.
    acc = {t: v["test_accuracy"] for t, v in records.items()}
    assert min(acc.values()) > 0.85, acc
    assert abs(acc["pytorch"] - acc["tensorflow"]) < 0.05, acc


def test_quantization_costs_little_accuracy_in_both_tracks(records):
    # Dynamic-range int8 on a 64-unit MLP should not lose more than 2 points of accuracy.
    for track, values in records.items():
        assert abs(values["dynamic_quant_accuracy_change"]) <= 0.02, (track, values)
    # Full int8 (calibrated on 200 training rows) may move a few more test digits; stored runs
    # change accuracy by 0 (TensorFlow) and +0.004 (PyTorch). 0.05 is 13 of 270 test digits.
    for track, values in records.items():
        assert abs(values["int8_accuracy_change"]) <= 0.05, (track, values)


def test_quantized_artifacts_are_smaller_in_both_tracks(records):
    for track, values in records.items():
        assert values["dynamic_quant_size"] < 0.6 * values["onnx_size"], (track, values)
        # QDQ int8 keeps float scales and zero points beside the int8 weights: ~10 KiB vs ~23.
        assert values["int8_size"] < 0.6 * values["onnx_size"], (track, values)


def test_server_answers_the_same_bad_requests_the_same_way(records):
    statuses = [records[t]["server_bad_request_statuses"] for t in records]
    assert statuses[0] == statuses[1] == [400, 400, 400, 400, 404]


# ------------------------------------------------------------------------------- serving.py


def double_first_ten(X):
    return X[:, :10] * 2


@pytest.fixture()
def server():
    with serving.PredictServer(double_first_ten, name="digits", input_shape=(64,)) as srv:
        yield srv


def test_good_request_and_status(server):
    X = np.arange(2 * 64, dtype=np.float32).reshape(2, 64) / 100
    status, body = serving.request(server.predict_url, {"instances": X.tolist()})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], double_first_ten(X), rtol=1e-6)
    status, body = serving.request(server.url)
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        (dict(data=b"{not json"), 400, "not valid JSON"),
        (dict(data=b"[1, 2]"), 400, "JSON object"),
        (dict(payload={"inputs": [[0.0] * 64]}), 400, 'missing "instances"'),
        (dict(payload={"instances": []}), 400, "non-empty"),
        (dict(payload={"instances": [[0.0] * 63]}), 400, "shape (64,)"),
        (dict(payload={"instances": [[0.0] * 64, [0.0] * 3]}), 400, "different shapes"),
        (dict(payload={"instances": [["a"] * 64]}), 400, "only numbers"),
        (dict(payload={"instances": [[None] * 64]}), 400, "only numbers"),
        (dict(payload={"instances": [[True] * 64]}), 400, "only numbers"),
        (dict(data=b'{"instances": [[NaN]]}'), 400, "finite"),
    ],
)
def test_bad_requests_get_4xx_json_errors(server, kwargs, status, words):
    got_status, body = serving.request(server.predict_url, **kwargs)
    assert got_status == status
    assert words in body["error"]


def test_unknown_model_path_and_method(server):
    assert (
        serving.request(
            server.url.replace("digits", "cats") + ":predict", {"instances": [[0.0] * 64]}
        )[0]
        == 404
    )
    assert serving.request(server.url.rsplit("/v1", 1)[0] + "/health")[0] == 404
    assert serving.request(server.url + ":classify", {"instances": [[0.0] * 64]})[0] == 404
    assert serving.request(server.predict_url)[0] == 405


def test_predict_failure_is_a_500():
    def broken(X):
        raise RuntimeError("boom")

    with serving.PredictServer(broken, name="m", input_shape=(2,)) as srv:
        status, body = serving.request(srv.predict_url, {"instances": [[1, 2]]})
    assert status == 500 and "boom" in body["error"]


def test_server_stops_and_port_closes():
    start = time.perf_counter()
    srv = serving.PredictServer(double_first_ten, input_shape=(64,)).start()
    port = srv.port
    assert srv.running and serving.port_is_open(port)
    srv.stop()
    srv.stop()  # twice is fine
    assert not srv.running and not serving.port_is_open(port)
    with pytest.raises(RuntimeError):
        srv.start()
    assert time.perf_counter() - start < 5


def test_parse_instances_directly():
    X = serving.parse_instances(json.dumps({"instances": [[1, 2], [3, 4]]}).encode(), (2,))
    assert X.dtype == np.float32 and X.shape == (2, 2)
    with pytest.raises(serving.BadRequest) as bad:
        serving.parse_instances(b'{"instances": [[1, 2, 3]]}', (2,))
    assert bad.value.status == 400


def test_export_helpers(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 5)
    assert export.artifact_size(tmp_path / "a") == 10
    assert export.artifact_size(tmp_path) == 15
    ref = np.eye(3, dtype=np.float32)
    row = export.parity_row("x", ref + 1e-7, ref, [0, 1, 2], path=tmp_path / "a")
    assert row["within"] and row["accuracy"] == 1.0 and row["size_bytes"] == 10
    assert "x" in export.format_table([row], export.STABLE_COLUMNS)


# -------------------------------------------------- direct parity: ONNX from both frameworks


def test_torch_to_onnx_matches_original(tmp_path):
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)
    ).eval()
    X = torch.randn(5, 8)
    path = tmp_path / "tiny.onnx"
    with export.quiet_native():
        torch.onnx.export(
            model,
            (X[:2],),
            path,
            dynamo=True,
            external_data=False,
            verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(X).numpy(), rtol=1e-5, atol=1e-6)


def test_tf_to_onnx_matches_original(tmp_path):
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    tf.random.set_seed(0)
    W1, W2 = tf.Variable(tf.random.normal((8, 6))), tf.Variable(tf.random.normal((6, 3)))
    spec = (tf.TensorSpec([None, 8], tf.float32, name="x"),)

    @tf.function(input_signature=spec)
    def forward(x):
        return tf.tanh(x @ W1) @ W2

    X = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    path = tmp_path / "tiny_tf.onnx"
    with export.quiet_native():
        tf2onnx.convert.from_function(
            forward, input_signature=spec, opset=17, output_path=str(path)
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": X})[0]
    np.testing.assert_allclose(got, forward(X).numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- checkers


def stub(*args, **kwargs):
    raise NotImplementedError("write your answer here")


def torch_export_right(model, example, path):
    import torch

    with export.quiet_native():
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=True,
            external_data=False,
            verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )


def torch_export_static(model, example, path):  # typical mistake: no dynamic batch dimension
    import torch

    with export.quiet_native():
        torch.onnx.export(model, (example,), path, dynamo=True, external_data=False, verbose=False)


def torch_quant(flip=False):
    def answer(onnx_path, X, y, work):
        import onnxruntime as ort
        from onnxruntime.quantization import quantize_dynamic

        quant = work / "q.onnx"
        with export.quiet_native():
            quantize_dynamic(onnx_path, quant)

        def acc(p):
            s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
            return float(np.mean(s.run(None, {s.get_inputs()[0].name: X})[0].argmax(1) == y))

        f, q = acc(onnx_path), acc(quant)
        return {
            "float_accuracy": f,
            "quantized_accuracy": q,
            "change": (f - q) if flip else (q - f),
        }

    return answer


def tf_export(batch):
    def answer(model, path):
        import tensorflow as tf

        with export.quiet_native():
            model.export(
                path, verbose=False, input_signature=[tf.TensorSpec([batch, 64], tf.float32)]
            )

    return answer


def tf_quant(report_float_as_quantized=False):
    def answer(saved_model_dir, X, y):
        import tensorflow as tf

        def acc(optimize):
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
            if optimize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            with export.quiet_native():
                blob = converter.convert()
            return export.accuracy(export.litert_predictor(blob)(X), y)

        f = acc(False)
        q = f + 0.1 if report_float_as_quantized else acc(True)
        return {"float_accuracy": f, "quantized_accuracy": q, "change": q - f}

    return answer


CASES = [
    (
        "06_deployment.pytorch.export_dynamic",
        torch_export_right,
        torch_export_static,
        "rejected a batch",
    ),
    ("06_deployment.pytorch.quantize_and_compare", torch_quant(), torch_quant(flip=True), "change"),
    ("06_deployment.tensorflow.export_dynamic", tf_export(None), tf_export(4), "fixed batch size"),
    (
        "06_deployment.tensorflow.quantize_and_compare",
        tf_quant(),
        tf_quant(True),
        "quantized_accuracy",
    ),
]


@pytest.mark.parametrize(("exercise", "right", "wrong", "words"), CASES, ids=[c[0] for c in CASES])
def test_checker_passes_right_rejects_wrong_and_stub(exercise, right, wrong, words):
    assert check(exercise, right).status == "passed", check(exercise, right).text()
    assert check(exercise, stub).status == "not solved"
    result = check(exercise, wrong)
    assert result.status == "wrong", result.text()
    assert words in result.message and "expected" in result.message and result.hint

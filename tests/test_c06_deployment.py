"""Tests for 06_deployment: stored records of both tracks, the twins' summaries, the serving,
browser, TensorFlow.js and deployment-target helpers, ONNX parity in both frameworks, and the
exercise checkers (a right answer passes; wrong answers and stubs do not, on any CPU).

Tolerances. Float artifacts run the same float32 arithmetic in another order: a few roundings of
logits of size ~10 to 30 (one rounding at 30 is ~2e-6), so 1e-4 is their bound on any CPU.
Quantized artifacts are rounded on purpose and get the notebooks' own loose bounds. Accuracies
are fractions of 270 test digits: one digit is 0.0037, and a digit that is a near-tie between two
classes may fall the other way on another CPU.
"""

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from course_tools import notebooks
from course_utils import browser, export, serving, targets, tfjs, web
from course_utils.checks import check
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "06_deployment"
ONE_DIGIT = 1 / 270
PARAMETERS = 64 * 64 + 64 + 64 * 10 + 10  # the lessons' MLP: weights and biases


# ------------------------------------------------------------------ stored records, both tracks


@pytest.fixture(scope="module")
def records():
    return {t: by_name(read_records(LESSON / f"{t}.ipynb")) for t in ("pytorch", "tensorflow")}


THRESHOLDS = {
    "export_max_abs_diff": 1e-4,
    "onnx_max_abs_diff": 1e-4,
    "legacy_max_abs_diff": 1e-4,
    "served_max_abs_diff": 1e-4,
    "edge_max_abs_diff": 1e-4,
    "browser_max_abs_diff": 1e-4,
    # Dynamic-range int8 weights move logits of size ~10 by well under 0.5; full int8 also rounds
    # activations (stored runs: ~0.2 to ~1.1). 3.0 is the notebooks' own threshold.
    "dynamic_quant_max_abs_diff": 0.5,
    "int8_max_abs_diff": 3.0,
    "edge_int8_max_abs_diff": 3.0,
}
SHARED = {
    "test_accuracy",
    "export_max_abs_diff",
    "export_size",
    "onnx_max_abs_diff",
    "onnx_size",
    "onnx_latency",
    "dynamic_quant_max_abs_diff",
    "dynamic_quant_accuracy_change",
    "dynamic_quant_size",
    "int8_max_abs_diff",
    "int8_accuracy_change",
    "int8_size",
    "int8_latency",
    "edge_max_abs_diff",
    "edge_size",
    "edge_latency",
    "edge_int8_max_abs_diff",
    "edge_int8_accuracy_change",
    "edge_int8_size",
    "edge_int8_latency",
    "browser_max_abs_diff",
    "browser_latency",
    "served_max_abs_diff",
    "server_bad_request_statuses",
    "deployment_targets",
}


def test_tracks_record_the_same_names_for_shared_quantities(records):
    for track, values in records.items():
        assert SHARED <= set(values), (track, SHARED - set(values))


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_each_artifact_within_threshold_in_both_tracks(records, name):
    for track, values in records.items():
        assert 0 <= values[name] < THRESHOLDS[name], (track, name, values[name])


def test_accuracies_of_both_tracks_above_floor_and_close(records):
    # A few epochs of an MLP on digits reach ~0.95; 0.85 is a floor that catches a broken
    # model, and 0.05 (about 13 of 270 test digits) is how far two frameworks' differently
    # initialised runs may reasonably land apart.
    acc = {t: v["test_accuracy"] for t, v in records.items()}
    assert min(acc.values()) > 0.85, acc
    assert abs(acc["pytorch"] - acc["tensorflow"]) < 0.05, acc


@pytest.mark.parametrize("name", ["dynamic_quant", "int8", "edge_int8"])
def test_quantization_costs_little_accuracy_and_the_tracks_agree(records, name):
    # int8 on a 64-unit MLP should not lose more than 2 points (about 5 test digits); the two
    # frameworks' quantized models may land on either side of the float one, so their changes
    # agree within 2 points plus a digit each.
    changes = {t: v[f"{name}_accuracy_change"] for t, v in records.items()}
    for track, change in changes.items():
        assert abs(change) <= 0.02 + 1e-9, (track, name, change)
        assert abs(change * 270 - round(change * 270)) < 1e-6, "a whole number of test digits"
    assert abs(changes["pytorch"] - changes["tensorflow"]) <= 0.02 + 2 * ONE_DIGIT, changes


def test_quantized_artifacts_are_smaller_in_both_tracks(records):
    for track, values in records.items():
        assert values["dynamic_quant_size"] < 0.6 * values["onnx_size"], (track, values)
        # QDQ int8 keeps float scales and zero points beside the int8 weights: ~10 KiB vs ~23.
        assert values["int8_size"] < 0.6 * values["onnx_size"], (track, values)
        assert values["edge_int8_size"] < 0.6 * values["edge_size"], (track, values)


def test_edge_files_hold_the_weights_and_compare_across_tracks(records):
    # A float32 edge file holds every parameter in 4 bytes, an int8 one in at least 1 byte; the
    # rest is graph and metadata, a few KiB in either format.
    for track, values in records.items():
        assert isinstance(values["edge_size"], int) and isinstance(values["edge_int8_size"], int)
        assert 4 * PARAMETERS <= values["edge_size"] < 4 * PARAMETERS + 8 * 1024, track
        assert PARAMETERS <= values["edge_int8_size"] < 4 * PARAMETERS, track
    sizes = [records[t]["edge_size"] for t in records]
    assert max(sizes) / min(sizes) < 1.3, sizes


def test_server_answers_the_same_bad_requests_the_same_way(records):
    statuses = [records[t]["server_bad_request_statuses"] for t in records]
    assert statuses[0] == statuses[1] == [400, 400, 400, 400, 404]


def test_browser_figures_name_the_pinned_runtime(records):
    pinned = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]
    for track in records:
        nb = read_records(LESSON / f"{track}.ipynb")
        notes = {r["note"] for r in nb if r["name"] in ("browser_max_abs_diff", "browser_latency")}
        assert notes == {f"onnxruntime-web {pinned['onnxruntime-web']}"}, (track, notes)


def test_both_tracks_list_every_deployment_target_in_order(records):
    for track, values in records.items():
        rows = values["deployment_targets"]
        assert [r["target"] for r in rows] == list(targets.TARGETS), track
        assert all(
            r["status"] in (targets.REACHED, targets.FAILED, targets.NOT_TRIED) for r in rows
        )
    # The stored outputs come from a machine with a browser: every target was reached there,
    # except the C++ one, which no notebook runs (both say "not tried" and name the file).
    cpp = targets.TARGETS.index("C++-loadable artifact")
    for track, values in records.items():
        statuses = [r["status"] for r in values["deployment_targets"]]
        expected = ["reached"] * 7
        expected[cpp] = targets.NOT_TRIED
        assert statuses == expected, track


def test_tensorflow_js_outcome_is_in_the_browser_row(records):
    browser_row = records["tensorflow"]["deployment_targets"][targets.TARGETS.index("browser")]
    assert browser_row["note"].startswith("TensorFlow.js: ")


def test_c10_verdict_from_the_stored_columns(records):
    verdict = targets.c10(
        records["pytorch"]["deployment_targets"], records["tensorflow"]["deployment_targets"]
    )
    assert verdict["pytorch"] == verdict["tensorflow"] == len(targets.TARGETS) - 1
    assert verdict["broader"] is None and verdict["verdict"].startswith("not supported")


# ----------------------------------------------------------------- the twins agree on the summary


def summary_table(path):
    """Return the lines of the markdown table in a notebook's Summary cell."""
    nb = notebooks.read(path)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "## Summary" in c.source)
    return [line for line in cell.source.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("set_name", ["notebooks", "solutions"])
def test_summary_tables_are_identical_in_both_twins(set_name):
    folder = ROOT / set_name / "06_deployment"
    pt, tf = (summary_table(folder / f"{t}.ipynb") for t in ("pytorch", "tensorflow"))
    assert pt and pt == tf


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
        (dict(payload={"rows": [[0.0] * 64]}), 400, 'missing "instances" or "inputs"'),
        (dict(payload={"instances": [[0.0] * 64], "inputs": [[0.0] * 64]}), 400, "not both"),
        (dict(payload={"inputs": [[0.0] * 63]}), 400, "shape (64,)"),
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


def test_columnar_form_answers_outputs(server):
    """TensorFlow Serving's columnar form: ``inputs`` in, ``outputs`` out."""
    X = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) / 100
    status, body = serving.request(server.predict_url, {"inputs": X.tolist()})
    assert status == 200 and set(body) == {"outputs"}
    np.testing.assert_allclose(body["outputs"], double_first_ten(X), rtol=1e-6)


def test_open_inference_protocol_v2(server):
    X = np.arange(2 * 64, dtype=np.float32).reshape(2, 64) / 100
    tensor = {"name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": X.ravel().tolist()}
    status, body = serving.request(server.v2_url, {"inputs": [tensor]})
    assert status == 200 and body["model_name"] == "digits"
    (out,) = body["outputs"]
    assert out["shape"] == [2, 10] and out["datatype"] == "FP32"
    np.testing.assert_allclose(
        np.reshape(out["data"], out["shape"]), double_first_ten(X), rtol=1e-6
    )
    for bad, words in [
        ({"inputs": [dict(tensor, shape=[2, 63])]}, "shape must be"),
        ({"inputs": [dict(tensor, datatype="INT8")]}, "FP32"),
        ({"inputs": [dict(tensor, data=[0.0] * 5)]}, "needs 128"),
        ({"instances": X.tolist()}, "v2 needs"),
    ]:
        status, body = serving.request(server.v2_url, bad)
        assert status == 400 and words in body["error"], body
    cats = server.v2_url.replace("digits", "cats")
    assert serving.request(cats, {"inputs": [tensor]})[0] == 404


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


# -------------------------------------------------------------------------------- export.py


def test_export_helpers(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 5)
    assert export.artifact_size(tmp_path / "a") == 10
    assert export.artifact_size(tmp_path) == 15
    ref = np.eye(3, dtype=np.float32)
    row = export.parity_row("x", ref + 1e-7, ref, [0, 1, 2], path=tmp_path / "a")
    assert row["within"] and row["accuracy"] == 1.0 and row["size_bytes"] == 10
    assert row["same_class_ok"] and row["accuracy_ok"] and row["accuracy_change"] == 0.0
    assert "x" in export.format_table([row], export.STABLE_COLUMNS)


def test_parity_row_verdicts_flag_a_changed_class():
    ref = np.eye(4, dtype=np.float32)
    moved = ref.copy()
    moved[0] = [0, 2, 0, 0]  # the first row now picks class 1: 3 of 4 agree, accuracy -0.25
    row = export.parity_row("q", moved, ref, [0, 1, 2, 3], threshold=3.0)
    assert row["within"] and not row["same_class_ok"] and not row["accuracy_ok"]
    assert row["accuracy_change"] == -0.25 and row["argmax_agree"] == 0.75


def test_example_share_is_one_example_and_a_half():
    assert export.example_share(270) == pytest.approx(1.5 / 270)
    assert export.example_share(100, examples=2) == pytest.approx(0.025)


# ------------------------------------------------------------------------------- targets.py


def _parity(name, diff, threshold, change=0.0):
    return {
        "artifact": name,
        "max_abs_diff": diff,
        "within": diff < threshold,
        "threshold": threshold,
        "accuracy_change": change,
    }


def full_column(**override):
    rows = {t: targets.reached(t, f"{t} artifact", 0.0, 1e-4) for t in targets.TARGETS}
    rows.update(override)
    return [rows[t] for t in targets.TARGETS]


def test_target_rows_from_parity_rows():
    ok = targets.from_row("ONNX", _parity("ORT", 2e-6, 1e-4))
    assert ok["status"] == "reached" and ok["evidence"] == "max |diff| < 0.0001"
    bad = targets.from_row("quantized int8", _parity("int8", 0.2, 3.0, change=-0.05), max_drop=0.02)
    assert bad["status"] == "failed" and "accuracy drop <= 0.02" in bad["evidence"]
    far = targets.from_row("ONNX", _parity("ORT", 0.5, 1e-4))
    assert far["status"] == "failed"
    with pytest.raises(ValueError, match="not below"):
        targets.reached("ONNX", "x", 1.0, 1e-4)
    with pytest.raises(ValueError, match="unknown deployment target"):
        targets.not_tried("fax machine", "no fax")


def test_target_records_are_complete_and_exact():
    rows = full_column()
    value = targets.as_record(rows)
    from course_utils.records import recorder

    assert recorder("06_deployment", "pytorch").entry("t", value)["tolerance"] == "exact"
    with pytest.raises(ValueError, match="one row per target"):
        targets.as_record(rows[:-1])
    text = targets.format_table(rows)
    assert text.count("\n") == len(targets.TARGETS) + 1 and "yes: browser artifact" in text


def test_c10_verdict_follows_the_targets_reached():
    same = targets.c10(full_column(), full_column())
    assert same["verdict"].startswith("not supported") and same["broader"] is None
    no_browser = full_column(browser=targets.failed("browser", "x.onnx", "RuntimeError: boom"))
    tf_wider = targets.c10(no_browser, full_column())
    assert tf_wider["broader"] == "tensorflow" and tf_wider["only_tensorflow"] == ["browser"]
    assert tf_wider["verdict"].startswith("supported")
    pt_wider = targets.c10(full_column(), no_browser)
    assert pt_wider["broader"] == "pytorch"
    untried = full_column(browser=targets.not_tried("browser", "no Chromium"))
    assert targets.c10(untried, untried)["pytorch"] == len(targets.TARGETS) - 1


def test_report_joins_both_columns_into_one_table(tmp_path):
    from course_tools import report, runner
    from course_tools.notebooks import Entry
    from course_utils.records import recorder

    pt = full_column(browser=targets.not_tried("browser", "no Chromium | none"))
    outcomes = []
    for track, column in (("pytorch", pt), ("tensorflow", full_column())):
        entry = Entry("notebooks", "06_deployment", track, tmp_path / f"{track}.ipynb")
        rec = recorder("06_deployment", track).entry("deployment_targets", column)
        outcomes.append(runner.Outcome(entry, entry.path, 1.0, True, None, [rec]))
    md = report.write(outcomes, tmp_path / "out")[0].read_text()
    assert "## Deployment targets (claim C10)" in md
    assert (
        "| browser | not tried: no Chromium \\| none | yes: browser artifact (max \\|diff\\| < 0.0001) |"
        in md
    )
    assert "**supported: TensorFlow reached targets PyTorch did not**" in md
    assert "Deployment targets" in (tmp_path / "out" / "report.html").read_text()


# ----------------------------------------------------------------------------------- web.py


def test_web_package_is_pinned_exactly_and_ignored():
    package = json.loads((ROOT / "web" / "package.json").read_text())
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    version = package["dependencies"][web.PACKAGE]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "an exact version, no range"
    assert lock["packages"][f"node_modules/{web.PACKAGE}"]["version"] == version
    assert "web/node_modules/" in (ROOT / ".gitignore").read_text()


def test_web_says_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {web.PACKAGE: "9.9.9"}}))
    monkeypatch.setenv("COURSE_WEB", str(tmp_path))
    assert web.pinned_version() == "9.9.9" and web.installed_version() is None
    assert web.runtime_dir() is None
    assert "not installed in web/node_modules" in web.why_unavailable()
    with pytest.raises(FileNotFoundError):
        web.prepare_page(tmp_path / "page", {})


needs_browser = pytest.mark.skipif(
    web.why_unavailable() is not None, reason=f"no browser runtime: {web.why_unavailable()}"
)


@needs_browser
def test_onnx_runtime_web_matches_onnx_runtime_in_chromium(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    W = rng.normal(size=(8, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [onnx.numpy_helper.from_array(W, "W")],
    )
    path = tmp_path / "tiny.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    X = rng.normal(size=(5, 8)).astype(np.float32)
    page = web.prepare_page(tmp_path / "page", {"tiny": path})
    with browser.static_server(page) as url:
        run = browser.in_browser(
            lambda b: web.run_in_page(b, url, X, ["tiny"], warmup=1, repeats=2, inner=1)
        )
    assert run["tiny"]["version"] == web.pinned_version()
    assert run["tiny"]["outputs"].shape == (5, 3) and len(run["tiny"]["times_s"]) == 2
    np.testing.assert_allclose(run["tiny"]["outputs"], X @ W, rtol=1e-5, atol=1e-5)
    assert "HeadlessChrome" in run["user_agent"]


# ---------------------------------------------------------------------------------- tfjs.py


def fake_dist(folder, name, version, requires=()):
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = [f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    (info / "METADATA").write_text("Metadata-Version: 2.1\n" + "\n".join(lines) + "\n")


def test_tfjs_reads_unmet_requirements_from_metadata(tmp_path):
    fake_dist(
        tmp_path,
        "fakeconverter",
        "1.0",
        [
            "numpy>=1.0",  # met by the course's environment
            "numpy<1.0",  # not met
            "tensorflow==1.0.0",  # not met: the course has tensorflow-cpu 2.x, counted as tensorflow
            "surely-not-installed-here>=1",
            "PyInquirer==1.0.3; extra == 'wizard'",  # an extra: skipped
        ],
    )
    problems = tfjs.unmet_requirements(tmp_path)
    assert len(problems) == 3, problems
    assert any("numpy<1.0; here: numpy" in p for p in problems)
    assert any("tensorflow==1.0.0; here: tensorflow" in p for p in problems)
    assert any("surely-not-installed-here>=1; here: not installed" in p for p in problems)


def test_tfjs_without_the_converter_says_how_to_install_it(tmp_path):
    attempt = tfjs.convert(tmp_path / "saved", tmp_path / "out", folder=tmp_path / "none")
    assert not attempt.ok and "install it with: python -m pip install --no-deps" in attempt.error
    assert not attempt.tried and "not tried: the converter is not installed" in attempt.summary()


def test_tfjs_error_lines_are_short_and_portable():
    text = (
        "Traceback (most recent call last):\n  File ...\n"
        "tensorflow.python.framework.errors_impl.NotFoundError: /x/side/pkg/op.so: undefined symbol: f\n"
    )
    assert (
        tfjs._last_error(text, [("/x/side", "<converter>")])
        == "NotFoundError: <converter>/pkg/op.so: undefined symbol: f"
    )


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
        np.testing.assert_allclose(got, model(X).numpy(), rtol=1e-5, atol=1e-5)


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
            forward, input_signature=spec, opset=18, output_path=str(path)
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": X})[0]
    np.testing.assert_allclose(got, forward(X).numpy(), rtol=1e-5, atol=1e-5)


def test_keras_onnx_export_matches_original(tmp_path):
    """Keras 3's own ONNX route (``model.export(format="onnx")``, tf2onnx underneath)."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)]
    )
    X = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    path = tmp_path / "tiny_keras.onnx"
    with export.quiet_native():
        model.export(
            path,
            format="onnx",
            verbose=False,
            input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")],
            opset_version=18,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": X})[0]
    np.testing.assert_allclose(got, model(X, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_aotinductor_package_matches_original_and_loads_without_the_class(tmp_path):
    """AOTInductor: a .pt2 package loaded in a fresh process that never defines the model."""
    import subprocess
    import sys

    import torch

    class Tiny(torch.nn.Module):  # defined here only: the loading process never sees it
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(8, 6), torch.nn.Linear(6, 3)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    torch.manual_seed(0)
    model = Tiny().eval()
    X = torch.randn(5, 8)
    program = torch.export.export(
        model, (X[:2],), dynamic_shapes=({0: torch.export.Dim("batch", max=64)},)
    )
    package = tmp_path / "tiny_aoti.pt2"
    with export.quiet_native():
        torch._inductor.aoti_compile_and_package(program, package_path=str(package))
    np.save(tmp_path / "x.npy", X.numpy())
    script = (
        "import sys, numpy as np, torch\n"
        "runner = torch._inductor.aoti_load_package(sys.argv[1])\n"
        "x = torch.from_numpy(np.load(sys.argv[2]))\n"
        "with torch.no_grad():\n"
        "    np.save(sys.argv[3], runner(x).numpy())\n"
    )
    out = tmp_path / "y.npy"
    subprocess.run(
        [sys.executable, "-c", script, str(package), str(tmp_path / "x.npy"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with torch.no_grad():
        np.testing.assert_allclose(np.load(out), model(X).numpy(), rtol=1e-5, atol=1e-5)


def test_saturation_splits_clipping_from_rounding():
    reference = np.array([[-3.0, 0.0, 0.5]])
    # int8 range with scale 0.01 and zero point 0: [-1.28, 1.27]; -3.0 is clipped by 1.72
    outputs = np.array([[-1.28, 0.01, 0.5]])
    got = export.saturation(outputs, reference, 0.01, 0)
    assert got["outside"] == 1 and abs(got["clipped_by"] - 1.72) < 1e-9
    assert abs(got["inside_steps"] - 1.0) < 1e-6 and abs(got["max_diff"] - 1.72) < 1e-9
    inside = export.saturation(reference, reference, 0.1, 0)
    assert inside["outside"] == 0 and inside["clipped_by"] == 0.0 and inside["max_diff"] == 0.0


def test_int8_output_qparams_of_a_litert_model():
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def forward(x):
        return x @ module.w

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], module
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rows = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    converter.representative_dataset = lambda: ([r[None, :]] for r in rows)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with export.quiet_native():
        blob = converter.convert()
    scale, zero_point, qmin, qmax = export.int8_output_qparams(blob)
    calibrated = rows @ module.w.numpy()
    low, high = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    # the calibrated range covers the calibration rows' outputs, to one step
    assert low <= calibrated.min() + scale and high >= calibrated.max() - scale


# ------------------------------------------------------------------------------- checkers


def stub(*args, **kwargs):
    raise NotImplementedError("write your answer here")


def torch_export(dynamic=True):
    def answer(model, example, path):
        import torch

        shapes = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic else {}
        with export.quiet_native():
            torch.onnx.export(
                model, (example,), path, dynamo=True, external_data=False, verbose=False, **shapes
            )

    return answer


def torch_quant(mistake=None):
    """The right answer, or one with a mistake that is wrong on any machine:
    "percent" reports accuracies in percent; "copy" writes the float file instead of quantizing.
    """

    def answer(onnx_path, X, y, work):
        import shutil

        import onnxruntime as ort
        from onnxruntime.quantization import quantize_dynamic

        quant = work / "q.onnx"
        if mistake == "copy":
            shutil.copyfile(onnx_path, quant)
        else:
            with export.quiet_native():
                quantize_dynamic(onnx_path, quant)

        def acc(p):
            s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
            right = s.run(None, {s.get_inputs()[0].name: X})[0].argmax(1) == y
            return float(np.mean(right)) * (100 if mistake == "percent" else 1)

        f, q = acc(onnx_path), acc(quant)
        return {"float_accuracy": f, "quantized_accuracy": q, "change": q - f}

    return answer


def torch_edge(dynamic=True, partition=True):
    def answer(model, example, path):
        import torch

        with export.quiet_native():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
                XnnpackPartitioner,
            )
            from executorch.exir import to_edge_transform_and_lower

        shapes = {"dynamic_shapes": ({0: torch.export.Dim("batch", max=64)},)} if dynamic else {}
        program = torch.export.export(model, (example,), **shapes)
        partitioner = [XnnpackPartitioner()] if partition else []
        with export.quiet_native():
            lowered = to_edge_transform_and_lower(program, partitioner=partitioner)
            path.write_bytes(lowered.to_executorch().buffer)

    return answer


def tf_export(batch):
    def answer(model, path):
        import tensorflow as tf

        with export.quiet_native():
            model.export(
                path, verbose=False, input_signature=[tf.TensorSpec([batch, 64], tf.float32)]
            )

    return answer


def tf_quant(percent=False):
    def answer(saved_model_dir, X, y):
        import tensorflow as tf

        def acc(optimize):
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
            if optimize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            with export.quiet_native():
                blob = converter.convert()
            return export.accuracy(export.litert_predictor(blob)(X), y) * (100 if percent else 1)

        f, q = acc(False), acc(True)
        return {"float_accuracy": f, "quantized_accuracy": q, "change": q - f}

    return answer


def tf_edge(quantize=False):
    def answer(saved_model_dir, path):
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
        if quantize:  # a typical slip: the exercise asks for the float32 model
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with export.quiet_native():
            path.write_bytes(converter.convert())

    return answer


RIGHT = {
    "06_deployment.pytorch.export_dynamic": torch_export(),
    "06_deployment.pytorch.quantize_and_compare": torch_quant(),
    "06_deployment.pytorch.lower_to_edge": torch_edge(),
    "06_deployment.tensorflow.export_dynamic": tf_export(None),
    "06_deployment.tensorflow.quantize_and_compare": tf_quant(),
    "06_deployment.tensorflow.convert_to_edge": tf_edge(),
}
# Each wrong answer is wrong whatever the CPU computes: a fixed batch size, a number that is not
# a fraction, a file that is not what was asked for. None relies on quantization changing the
# accuracy, which on some CPUs it does not.
WRONG = [
    ("06_deployment.pytorch.export_dynamic", torch_export(dynamic=False), "rejected a batch"),
    ("06_deployment.pytorch.quantize_and_compare", torch_quant("percent"), "between 0 and 1"),
    ("06_deployment.pytorch.quantize_and_compare", torch_quant("copy"), "is not quantized"),
    ("06_deployment.pytorch.lower_to_edge", torch_edge(dynamic=False), "rejected a batch"),
    ("06_deployment.pytorch.lower_to_edge", torch_edge(partition=False), "not lowered to XNNPACK"),
    ("06_deployment.tensorflow.export_dynamic", tf_export(4), "fixed batch size"),
    ("06_deployment.tensorflow.quantize_and_compare", tf_quant(percent=True), "between 0 and 1"),
    ("06_deployment.tensorflow.convert_to_edge", tf_edge(quantize=True), "the model is quantized"),
]


def test_every_06_checker_is_tested():
    from course_utils.checks import load_checkers

    assert {k for k in load_checkers() if k.startswith("06_")} == set(RIGHT)


@pytest.mark.parametrize("exercise", sorted(RIGHT))
def test_checker_passes_the_right_answer_and_reports_a_stub(exercise):
    result = check(exercise, RIGHT[exercise])
    assert result.status == "passed", result.text()
    assert not re.search(r"\d\.\d", result.message), "no CPU-dependent figure in a stored message"
    assert check(exercise, stub).status == "not solved"


@pytest.mark.parametrize(
    ("exercise", "wrong", "words"), WRONG, ids=[f"{w[0]}-{w[2]}" for w in WRONG]
)
def test_checker_rejects_a_wrong_answer(exercise, wrong, words):
    result = check(exercise, wrong)
    assert result.status == "wrong", result.text()
    assert words in result.message and "expected" in result.message and result.hint


def test_quantization_judgement_rejects_a_flipped_change():
    # Direct test of the judgement with made-up accuracies where quantizing did change the
    # accuracy: reporting float minus quantized is wrong, whatever this CPU computes.
    from course_utils.checkers.c06_deployment import QUANT_HINT_TORCH, _check_quant_dict
    from course_utils.checks import Mismatch

    expected = {"float_accuracy": 0.9, "quantized_accuracy": 0.8, "n": 270}
    right = {"float_accuracy": 0.9, "quantized_accuracy": 0.8, "change": -0.1}
    assert "change = quantized minus float" in _check_quant_dict(right, expected, "", 1e-9)
    with pytest.raises(Mismatch, match="change = quantized_accuracy - float_accuracy"):
        _check_quant_dict({**right, "change": 0.1}, expected, QUANT_HINT_TORCH, 1e-9)
    with pytest.raises(Mismatch, match="quantized_accuracy"):
        _check_quant_dict({**right, "quantized_accuracy": 0.9, "change": 0.0}, expected, "", 1e-9)


def test_strip_stack_traces_removes_the_paths_the_exporter_writes_and_keeps_the_rest(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    node.metadata_props.add(key="namespace", value="relu: aten.relu.default")
    node.metadata_props.add(
        key=export.STACK_TRACE_KEY, value='File "/home/alice/course/model.py", line 3'
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    assert b"/home/alice" in path.read_bytes()
    assert export.strip_stack_traces(path) == 1
    assert b"/home/alice" not in path.read_bytes()
    kept = onnx.load(path).graph.node[0].metadata_props
    assert [(p.key, p.value) for p in kept] == [("namespace", "relu: aten.relu.default")]
    assert export.strip_stack_traces(path) == 0
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        export.strip_stack_traces(tmp_path / "missing.onnx")


MODEL_SOURCE = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))
"""


def _saved_pt2(folder, strip):
    """Export a model whose class lives in ``folder``/net_<n>.py and save it as a .pt2 file.

    Returns the file's path, how many stack traces were stripped, and the archive's bytes.
    """
    import importlib.util
    import zipfile

    import torch

    folder.mkdir(parents=True)
    source = folder / f"net_{len(str(folder))}.py"
    source.write_text(MODEL_SOURCE)
    spec = importlib.util.spec_from_file_location(source.stem, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = torch.export.export(module.Net(), (torch.ones(2, 8),))
    stripped = export.strip_stack_traces(exported) if strip else 0
    path = folder / "model.pt2"  # the archive's inner folder is named after the file: same name
    torch.export.save(exported, path)
    with zipfile.ZipFile(path) as archive:
        text = b"".join(archive.read(name) for name in archive.namelist())
    return path, stripped, text


def test_a_stripped_pt2_holds_no_paths_and_its_size_does_not_depend_on_the_checkout(tmp_path):
    import torch

    _, _, unstripped = _saved_pt2(tmp_path / "a", strip=False)
    assert str(tmp_path / "a").encode() in unstripped  # what the lesson strips is really there
    sizes = []
    for folder in (tmp_path / "b", tmp_path / "a much longer checkout folder" / "course"):
        path, stripped, text = _saved_pt2(folder, strip=True)
        assert stripped == 2  # linear and relu
        assert str(folder).encode() not in text and b".py" not in text
        sizes.append(path.stat().st_size)
        program = torch.export.load(path).module()
        torch.manual_seed(0)
        reference = torch.nn.Linear(8, 4)  # the same seed: the weights the file holds
        assert torch.allclose(program(torch.ones(2, 8)), torch.relu(reference(torch.ones(2, 8))))
    assert sizes[0] == sizes[1], sizes

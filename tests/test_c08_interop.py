"""08_interop: the two tracks make the same crossings in opposite directions and agree.

Stored records of both lessons are compared (the PyTorch track received a CNN trained in
TensorFlow, the TensorFlow track the same CNN trained in PyTorch, from the same initial weights
on the same batches), the interop helpers are unit-tested, a few crossings are re-run directly
here, and every exercise checker is shown a right answer, the stub and wrong answers.

Tolerances. The crossed models are the product of 120 SGD-with-momentum steps in float32 in two
frameworks; the stored runs differ by ~1e-5 on logits of size ~10 (7e-7 relative), so logits
get rtol 1e-4 + atol 1e-4 and losses rtol 1e-4. A forgotten layout conversion changes logits by
whole units and accuracy by tens of points, so the tolerances cannot hide one. Accuracies on
the 270 test images may flip by an example between frameworks: 2 examples' worth.
"""

from pathlib import Path

import numpy as np
import pytest

import course_utils as cu
from course_utils import interop, training
from course_utils.checkers import c08_interop
from course_utils.checks import check
from course_utils.records import by_name, read_records

cu.quiet()

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "08_interop"
ACCURACY_ATOL = 2 / 270


@pytest.fixture(scope="module")
def stored():
    return {t: by_name(read_records(LESSON / f"{t}.ipynb")) for t in ("pytorch", "tensorflow")}


@pytest.fixture(scope="module")
def frameworks():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    return torch, tf, keras


# ---------------------------------------------------------------- parity of the stored records

SHARED = {
    "keras_backend_when_set_late",
    "dlpack_shares_memory",
    "dlpack_write_seen",
    "dlpack_cases",
    "variable_view_goes_stale",
    "dlpack_string_tensor",
    "round_trip_shares_memory",
    "round_trip_s",
    "round_trip_growth",
    "producer_test_accuracy",
    "crossed_max_abs_diff",
    "crossed_logits",
    "crossed_accuracy",
    "unreordered_accuracy",
    "keras_probe_other_framework",
    "keras_initial_logits",
    "keras_first_losses",
    "keras_seeded_kernel",
    "keras_native_step_losses",
    "onnx_max_abs_diff",
    "onnx_accuracy",
    "custom_gradient_crossed",
    "ste_gradient",
    "rng_draws",
    "pipeline_first_labels",
    "resume_losses_went_on",
    "resume_losses_weights_only",
    "dlpack_grad_after_crossing",
    "batchnorm_port",
    "strided_padding_port",
}


def test_both_tracks_record_the_same_figures(stored):
    for track, records in stored.items():
        assert SHARED <= set(records), (track, SHARED - set(records))


@pytest.mark.parametrize(
    "name",
    [
        "keras_backend_when_set_late",
        "dlpack_shares_memory",
        "dlpack_write_seen",
        "dlpack_cases",
        "variable_view_goes_stale",
        "dlpack_string_tensor",
        "round_trip_shares_memory",
        "custom_gradient_crossed",
        "ste_gradient",
        "pipeline_first_labels",
        "dlpack_grad_after_crossing",
    ],
)
def test_exact_facts_agree(stored, name):
    assert stored["pytorch"][name] == stored["tensorflow"][name]


def test_the_facts_themselves(stored):
    pt = stored["pytorch"]
    assert pt["keras_backend_when_set_late"] == "tensorflow"  # the late setting is ignored
    assert pt["dlpack_shares_memory"] and pt["dlpack_write_seen"]
    assert pt["variable_view_goes_stale"]
    assert pt["dlpack_string_tensor"] == "SIGABRT"
    assert pt["round_trip_shares_memory"] == {"DLPack": True, "NumPy copies": False}
    assert pt["custom_gradient_crossed"] is False
    assert pt["ste_gradient"] == [0.0, 4.0, -2.0]
    cases = pt["dlpack_cases"]
    assert cases["TF tensor -> PyTorch"] == ["shared", None]
    assert cases["transposed -> TF"] == ["error", "copied"]
    assert cases["requires grad -> TF"] == ["error", "shared"]  # __dlpack__ refuses...
    assert cases["requires grad -> TF (to_dlpack)"] == ["shared", None]  # ...to_dlpack does not
    assert pt["dlpack_grad_after_crossing"] == [1.0, 1.0, 1.0]  # the crossed part's 2 is lost
    assert cases["bfloat16 -> NumPy"] == ["error", "copied"]
    assert cases["TF .numpy()"] == ["copied", None]
    assert cases["PyTorch .numpy()"] == ["shared", None]
    labels = pt["pipeline_first_labels"]
    assert labels["NumPy order, torch"] == labels["NumPy order, tf.data"]
    assert labels["tf.data shuffle"] != labels["DataLoader shuffle"]


def test_the_crossed_models_agree_across_directions(stored):
    pt, tf = stored["pytorch"], stored["tensorflow"]
    np.testing.assert_allclose(pt["crossed_logits"], tf["crossed_logits"], rtol=1e-4, atol=1e-4)
    for track in (pt, tf):
        assert track["crossed_max_abs_diff"] < 1e-4
        assert track["onnx_max_abs_diff"] < 1e-4
        assert track["crossed_accuracy"] > 0.5  # a trained model, well above chance (0.1)
        assert abs(track["crossed_accuracy"] - track["producer_test_accuracy"]) <= ACCURACY_ATOL
        assert abs(track["onnx_accuracy"] - track["producer_test_accuracy"]) <= ACCURACY_ATOL
        assert track["unreordered_accuracy"] < track["crossed_accuracy"] - 0.2
    for name in ("producer_test_accuracy", "crossed_accuracy", "onnx_accuracy"):
        assert abs(pt[name] - tf[name]) <= ACCURACY_ATOL, name
    assert pt["keras_file_max_abs_diff"] < 1e-4  # the .keras route exists into PyTorch only


def test_keras_gives_the_same_numbers_on_both_backends(stored):
    pt, tf = stored["pytorch"], stored["tensorflow"]
    np.testing.assert_allclose(pt["keras_initial_logits"], tf["keras_initial_logits"], atol=1e-5)
    assert len(pt["keras_first_losses"]) == 10
    np.testing.assert_allclose(pt["keras_first_losses"], tf["keras_first_losses"], rtol=1e-5)
    for track in (pt, tf):  # the backend's own training loop gives the same losses
        np.testing.assert_allclose(
            track["keras_native_step_losses"], track["keras_first_losses"], rtol=1e-5
        )
    assert pt["keras_first_losses"][0] != pytest.approx(pt["keras_first_losses"][-1], rel=1e-2)


def test_a_seed_does_not_cross_backends(stored):
    pt, tf = stored["pytorch"], stored["tensorflow"]
    kernels = np.array(pt["keras_seeded_kernel"]), np.array(tf["keras_seeded_kernel"])
    assert kernels[0].shape == kernels[1].shape == (2, 3)
    assert np.abs(kernels[0] - kernels[1]).max() > 0.1  # different generators, not rounding
    draws = pt["rng_draws"]
    np.testing.assert_allclose(draws["torch"], tf["rng_draws"]["torch"], rtol=1e-6)
    assert np.abs(np.subtract(draws["torch"], draws["tensorflow"])).max() > 0.1


def test_keras_probes_tell_which_framework_loaded(stored):
    pt = stored["pytorch"]["keras_probe_other_framework"]
    tf = stored["tensorflow"]["keras_probe_other_framework"]
    assert list(pt) == list(tf) and set(pt) == set(interop.KERAS_STEPS)
    assert not any(tf.values())  # Keras on TensorFlow never loads PyTorch
    assert not pt["import keras"] and not pt["compile and fit"]  # Keras on torch needs no TF...
    assert pt["keras.utils.set_random_seed"]  # ...until it seeds (TensorFlow is installed)


def test_optimizer_state_must_be_moved(stored):
    pt, tf = stored["pytorch"], stored["tensorflow"]
    for name in ("resume_losses_went_on", "resume_losses_weights_only"):
        np.testing.assert_allclose(pt[name], tf[name], rtol=1e-4)
    went_on, weights_only = pt["resume_losses_went_on"], pt["resume_losses_weights_only"]
    assert weights_only[0] == pytest.approx(went_on[0], rel=1e-4)  # before the first update
    assert all(
        abs(a - b) > 1e-3 * abs(b) for a, b in zip(weights_only[1:], went_on[1:], strict=True)
    )


TRAP_TOL = 1e-4  # the lessons' tolerance for a ported layer: float32 rounding


def test_the_layout_traps_go_wrong_then_right(stored):
    """Stored: the naive port of each trap differs by more than the tolerance, the fixed port
    agrees within it, in both tracks (records are [naive, fixed])."""
    for track, records in stored.items():
        naive, fixed = records["batchnorm_port"]
        assert naive["output"] > TRAP_TOL and naive["running_mean"] > TRAP_TOL, track
        assert fixed["output"] <= TRAP_TOL and fixed["running_mean"] <= TRAP_TOL, track
        naive_pad, fixed_pad = records["strided_padding_port"]
        assert naive_pad > TRAP_TOL and fixed_pad <= TRAP_TOL, track
    pt, tf = stored["pytorch"], stored["tensorflow"]  # the same weights in both directions
    np.testing.assert_allclose(
        pt["strided_padding_port"][0], tf["strided_padding_port"][0], rtol=1e-3
    )


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
def test_batchnorm_port_needs_momentum_and_eps_converted(frameworks, direction):
    naive = interop.batchnorm_port(direction, fix=False)
    fixed = interop.batchnorm_port(direction, fix=True)
    assert naive["output"] > TRAP_TOL  # eps 1e-5 vs 1e-3
    assert naive["running_mean"] > TRAP_TOL  # momentum 0.1 vs 0.99
    assert fixed["output"] <= TRAP_TOL and fixed["running_mean"] <= TRAP_TOL


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
def test_strided_same_padding_needs_explicit_padding(frameworks, direction):
    assert interop.strided_same_port(direction, fix=False) > TRAP_TOL
    assert interop.strided_same_port(direction, fix=True) <= TRAP_TOL


def test_torch_refuses_same_padding_with_a_stride(frameworks):
    torch, _, _ = frameworks
    with pytest.raises(ValueError, match="strided"):
        torch.nn.Conv2d(1, 8, 3, stride=2, padding="same")


def test_to_dlpack_drops_the_gradient_silently(frameworks):
    torch, tf, _ = frameworks
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(BufferError):
        w.__dlpack__()
    crossed = torch.from_dlpack(tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(w)))
    assert not crossed.requires_grad


def test_describe_growth_reads_fixed_cost_and_slope():
    sizes = [2**k for k in range(10, 25, 2)]
    rows = []
    for n in sizes:
        rows.append({"route": "share", "bytes": n, "median_s": 5e-6})
        rows.append({"route": "copy", "bytes": n, "median_s": 2e-5 + n * 1e-10})
    growth = interop.describe_growth(rows)
    assert growth["share"]["slope"] == pytest.approx(0.0)
    assert growth["share"]["dominated_until_bytes"] == sizes[-1]
    assert growth["copy"]["slope"] > 0.5  # the per-byte part dominates at the large end
    # 2e-5 + n * 1e-10 < 4e-5 while n < 2e5 bytes: the fixed part dominates up to 64 KiB
    assert growth["copy"]["dominated_until_bytes"] == 2**16
    assert growth["copy"]["fixed_s"] == pytest.approx(2e-5 + 2**10 * 1e-10)


def test_verdict_and_declared_tolerances():
    assert interop.verdict(1e-6, 1e-4).startswith("agree")
    assert interop.verdict(1e-2, 1e-4).startswith("differ")
    assert SHARED <= set(interop.TOLERANCES)
    assert "keras_file_max_abs_diff" in interop.TOLERANCES
    shown = []
    interop.record_figures(lambda name, value, **kw: shown.append((name, kw)), crossed_accuracy=0.9)
    assert shown == [("crossed_accuracy", {"atol": 2 / 270})]


def test_timing_records_are_plausible(stored):
    for track, records in stored.items():
        entries = {r["name"]: r for r in read_records(LESSON / f"{track}.ipynb")}
        assert entries["round_trip_s"]["unit"] == "s"
        assert entries["round_trip_s"]["tolerance"] is None  # a timing: variable on purpose
        times = records["round_trip_s"]  # {route: [[bytes, median seconds], ...]}
        assert [b for b, _ in times["DLPack"]] == [b for b, _ in times["NumPy copies"]]
        assert times["NumPy copies"][-1][1] > times["DLPack"][-1][1], track
        growth = records["round_trip_growth"]
        assert growth["NumPy copies"] > growth["DLPack"], track


# ---------------------------------------------------------------- the helpers, without frameworks


def test_structure_reads_the_spec():
    assert interop.structure(training.CNN_SPEC) == [
        ("conv", None),
        ("conv", None),
        ("dense", (2, 2, 16)),
    ]
    assert interop.structure(training.MLP_SPEC) == [("dense", None), ("dense", None)]


def test_state_dict_and_keras_layers_round_trip():
    arrays = c08_interop._random_cnn_weights(seed=1)
    layers = interop.layers_from_keras_arrays(arrays)
    state = interop.state_dict_from_layers(layers)
    assert state["conv2.weight"].shape == (16, 8, 3, 3) and state["out.weight"].shape == (10, 64)
    back = interop.layers_from_state_dict(state)
    assert training.max_difference(back, layers) == 0.0
    # the dense rows really move: not a plain transpose
    assert not np.array_equal(state["out.weight"], arrays["out/kernel"].T)


def test_hwc_rows_from_chw_inverts_chw_rows_from_hwc():
    kernel = np.arange(24 * 3, dtype=np.float32).reshape(24, 3)
    moved = training.chw_rows_from_hwc(kernel, (2, 3, 4))
    assert not np.array_equal(moved, kernel)
    assert np.array_equal(training.hwc_rows_from_chw(moved, (2, 3, 4)), kernel)


def test_random_checker_weights_have_no_repeated_values():
    """What makes the layout checkers' wrong answers wrong by construction: moving any value
    to another place changes the array, because no two values are equal."""
    for seed in (11, 12, 13, 14):
        for value in c08_interop._random_cnn_weights(seed).values():
            assert len(np.unique(value)) == value.size


def test_shares_memory_tells_views_from_copies():
    a = np.arange(6.0)
    assert interop.shares_memory(a, a[:3])
    assert not interop.shares_memory(a, a.copy())
    assert interop.crossing(a, lambda x: x.reshape(2, 3)).verdict == "shared"
    assert interop.crossing(a, np.copy).verdict == "copied"
    failed = interop.crossing(a, lambda x: x.reshape(4, 4))
    assert failed.verdict == "error" and failed.error.startswith("ValueError: ")


def test_crossing_rows_and_their_table():
    cases = [
        ("view", lambda: np.ones(4), lambda x: x[:], None),
        ("bad", lambda: np.ones(4), lambda x: x.reshape(3), np.copy),
    ]
    rows = interop.crossing_rows(cases)
    assert rows == [
        {"case": "view", "verdict": "shared", "error": None, "fix": None},
        {"case": "bad", "verdict": "error", "error": "ValueError", "fix": "copied"},
    ]
    text = interop.format_crossings(rows)
    assert text.splitlines()[0].split() == [
        "crossing",
        "result",
        "error",
        "with",
        "the",
        "usual",
        "fix",
    ]


def test_fresh_python_reports_output_and_crashes():
    done = interop.fresh_python("print('hello')")
    assert done.returncode == 0 and done.lines() == ["hello"] and not done.crashed
    crash = interop.fresh_python("import os\nprint('before', flush=True)\nos.abort()")
    assert crash.crashed and crash.signal_name == "SIGABRT" and crash.lines() == ["before"]
    env = interop.fresh_python("import os\nprint(os.environ['OMP_NUM_THREADS'])", env={"X": "1"})
    assert env.lines() == ["1"]  # background processes run on one thread


def test_background_processes_are_stopped_at_exit():
    pending = interop.start_fresh("import time\ntime.sleep(120)")
    assert pending in interop._RUNNING
    interop._stop_running()  # what atexit runs when the notebook's kernel ends
    assert pending._process.poll() is not None and pending not in interop._RUNNING


def test_check_failure_drops_the_volatile_prefix():
    fake = interop.Fresh(
        -6, "", "noise\nF0000 00:00:17.1  123 t.cc:1] Check failed: x == y \n", 1.0
    )
    assert interop.check_failure(fake) == "Check failed: x == y"
    assert interop.check_failure(interop.Fresh(0, "", "", 0.1)) is None


def test_probes_are_python_and_keras_imports_parses_their_lines(tmp_path):
    for code in (
        interop.IMPORT_ORDER_PROBE,
        interop.STRING_TENSOR_PROBE,
        interop.keras_imports_probe("torch", tmp_path),
    ):
        compile(code, "probe", "exec")
    out = '{"step": "import keras", "torch": true, "tensorflow": false}\nother line\n'
    assert interop.keras_imports(interop.Fresh(0, out, "", 1.0)) == [
        {"step": "import keras", "torch": True, "tensorflow": False}
    ]
    with pytest.raises(RuntimeError, match="Keras probe failed"):
        interop.keras_imports(interop.Fresh(1, "", "Traceback ...", 1.0))


def test_resume_batches_follow_the_shared_order():
    splits = cu.load_digits(seed=0)
    batches = interop.resume_batches(splits, seed=0, epoch=2, steps=3, batch_size=8)
    order = cu.data.epoch_order(len(splits.y_train), 0, 2)
    assert [len(y) for _, y in batches] == [8, 8, 8]
    assert np.array_equal(batches[1][1], splits.y_train[order[8:16]])


def test_round_trip_timing_rows_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    routes = {"view": lambda x: x[:], "copy": np.copy}
    rows = interop.time_round_trips(routes, [16, 64], repeats=2, make=np.zeros)
    assert [(r["route"], r["elements"], r["bytes"]) for r in rows] == [
        ("view", 16, 128),
        ("copy", 16, 128),
        ("view", 64, 512),
        ("copy", 64, 512),
    ]
    assert all(r["median_s"] >= r["min_s"] >= 0 for r in rows)
    assert interop.plot_round_trips(rows).axes[0].get_xscale() == "log"


def test_converter_table_filters_by_target():
    assert {r["package"] for r in interop.converter_table("PyTorch")} == {"onnx2torch"}
    assert {r["package"] for r in interop.converter_table("Keras")} == {"nobuco"}
    assert all("installed" in r for r in interop.converter_table())


def test_a_delivery_reads_its_files(tmp_path):
    np.savez(tmp_path / "weights.npz", **{"a.weight": np.ones((2, 3))})
    np.savez(tmp_path / "optimizer.npz", **{"a.weight": np.zeros((2, 3))})
    np.save(tmp_path / "test_logits.npy", np.eye(2))
    delivery = interop.Delivery("torch", tmp_path, {"steps": 1})
    assert delivery.files == ["optimizer.npz", "test_logits.npy", "weights.npz"]
    assert delivery.weights()["a.weight"].shape == (2, 3)
    assert not delivery.optimizer_state()["a.weight"].any()
    assert np.array_equal(delivery.test_logits(), np.eye(2))


def test_a_failed_delivery_says_why(tmp_path):
    with pytest.raises(ValueError, match="framework"):
        interop.start_delivery("jax", tmp_path)
    pending = interop.PendingDelivery(
        "torch", tmp_path, interop.start_fresh("import sys\nsys.exit('no luck')")
    )
    with pytest.raises(RuntimeError, match="exit status 1"):
        pending.wait()


# ---------------------------------------------------------------- crossings, run directly


def test_dlpack_shares_both_ways(frameworks):
    torch, tf, _ = frameworks
    t = torch.arange(4.0)
    x = tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    assert interop.shares_memory(t, x)
    t[0] = 7.0
    assert x.numpy()[0] == 7.0
    back = torch.from_dlpack(x)
    assert interop.shares_memory(back, t)
    assert (
        interop.crossing(
            t.reshape(2, 2).T,
            lambda v: tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(v)),
        ).verdict
        == "error"
    )


def test_loaded_names_the_frameworks(frameworks):
    found = interop.loaded()
    assert found["torch"] and found["tensorflow"] and found["keras"]
    assert found["keras_backend"] in ("tensorflow", "torch", "jax")


def test_converted_cnn_weights_give_the_same_outputs(frameworks):
    torch, _, _ = frameworks
    arrays = c08_interop._random_cnn_weights(seed=3)
    layers = interop.layers_from_keras_arrays(arrays)
    keras_model = training.load_keras(interop.keras_cnn(), layers)
    torch_model = interop.torch_cnn()
    torch_model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in interop.state_dict_from_layers(layers).items()}
    )
    X = cu.load_digits(seed=0).X_test[:16]
    with torch.no_grad():
        out_torch = torch_model(torch.from_numpy(X.reshape(-1, 1, 8, 8))).numpy()
    out_keras = np.asarray(keras_model(X.reshape(-1, 8, 8, 1)))
    np.testing.assert_allclose(out_torch, out_keras, rtol=1e-5, atol=1e-5)
    assert interop.keras_arrays(keras_model).keys() == arrays.keys()


def test_momentum_helpers_round_trip(frameworks):
    torch, _, keras = frameworks
    arrays = c08_interop._random_cnn_weights(seed=4)
    model = interop.keras_cnn()
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    interop.set_keras_momentum(model, optimizer, arrays)
    got = interop.keras_momentum(model, optimizer)
    assert all(np.array_equal(got[k], arrays[k]) for k in arrays)
    net = interop.torch_cnn()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    state = interop.state_dict_from_layers(interop.layers_from_keras_arrays(arrays))
    interop.set_torch_momentum(net, sgd, state)
    assert all(np.array_equal(v, state[k]) for k, v in interop.torch_momentum(net, sgd).items())


# ---------------------------------------------------------------- the exercises' checkers


def _stub(*args):
    raise NotImplementedError("Exercise: write your code here")


def _state_dict_from_keras(arrays):
    return interop.state_dict_from_layers(interop.layers_from_keras_arrays(arrays))


def _keras_arrays_from_state_dict(state):
    layers = interop.layers_from_state_dict(state)
    return {
        f"{n}/{p}": getattr(layer, "kernel" if p == "kernel" else "bias")
        for n, layer in zip(interop.CNN_NAMES, layers, strict=True)
        for p in ("kernel", "bias")
    }


def _no_reorder(arrays):
    state = _state_dict_from_keras(arrays)
    state["out.weight"] = arrays["out/kernel"].T
    return state


def _reshaped_conv(arrays):
    state = _state_dict_from_keras(arrays)
    state["conv1.weight"] = arrays["conv1/kernel"].reshape(8, 1, 3, 3)
    return state


def _keras_no_reorder(state):
    arrays = _keras_arrays_from_state_dict(state)
    arrays["out/kernel"] = state["out.weight"].T
    return arrays


def _to_torch(x):
    import tensorflow as tf
    import torch

    if isinstance(x, tf.Variable):
        return torch.from_dlpack(x.value()).clone()
    return torch.from_dlpack(x)


def _to_torch_view_of_variable(x):
    import tensorflow as tf
    import torch

    return torch.from_dlpack(x.value() if isinstance(x, tf.Variable) else x)


def _to_torch_copy(x):
    import torch

    return torch.tensor(x.numpy())


def _to_torch_plain(x):
    import torch

    return torch.from_dlpack(x)


def _to_tf(t):
    import tensorflow as tf
    import torch

    return tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t.detach().contiguous()))


def _to_tf_copy(t):
    import tensorflow as tf

    return tf.constant(t.detach().numpy())


def _to_tf_no_detach(t):
    import tensorflow as tf

    return tf.experimental.dlpack.from_dlpack(t.contiguous().__dlpack__())


def _to_tf_no_contiguous(t):
    import tensorflow as tf

    return tf.experimental.dlpack.from_dlpack(t.detach().__dlpack__())


CASES = [
    ("08_interop.pytorch.to_torch", _to_torch, _to_torch_copy, "from_dlpack"),
    ("08_interop.pytorch.to_torch", _to_torch, _to_torch_view_of_variable, "clone"),
    ("08_interop.pytorch.to_torch", _to_torch, _to_torch_plain, "value()"),
    ("08_interop.tensorflow.to_tensorflow", _to_tf, _to_tf_copy, "capsule"),
    ("08_interop.tensorflow.to_tensorflow", _to_tf, _to_tf_no_detach, "detach"),
    ("08_interop.tensorflow.to_tensorflow", _to_tf, _to_tf_no_contiguous, "contiguous"),
    (
        "08_interop.pytorch.state_dict_from_keras",
        _state_dict_from_keras,
        _no_reorder,
        "(H, W, C) order",
    ),
    ("08_interop.pytorch.state_dict_from_keras", _state_dict_from_keras, _reshaped_conv, "reshape"),
    (
        "08_interop.tensorflow.keras_arrays_from_state_dict",
        _keras_arrays_from_state_dict,
        _keras_no_reorder,
        "(C, H, W) order",
    ),
    (
        "08_interop.pytorch.momentum_from_keras",
        lambda m, lr: {k: -v / lr for k, v in _state_dict_from_keras(m).items()},
        lambda m, lr: {k: v / lr for k, v in _state_dict_from_keras(m).items()},
        "-1 times",
    ),
    (
        "08_interop.pytorch.momentum_from_keras",
        lambda m, lr: {k: -v / lr for k, v in _state_dict_from_keras(m).items()},
        lambda m, lr: {k: -v for k, v in _state_dict_from_keras(m).items()},
        "0.05 times",
    ),
    (
        "08_interop.pytorch.momentum_from_keras",
        lambda m, lr: {k: -v / lr for k, v in _state_dict_from_keras(m).items()},
        lambda m, lr: {k: -v / lr for k, v in _no_reorder(m).items()},
        "not converted like the weights",
    ),
    (
        "08_interop.tensorflow.momentum_from_torch",
        lambda b, lr: {k: -lr * v for k, v in _keras_arrays_from_state_dict(b).items()},
        lambda b, lr: {k: -v / lr for k, v in _keras_arrays_from_state_dict(b).items()},
        "400 times",
    ),
]


@pytest.mark.parametrize(("exercise_id", "right", "wrong", "hint_word"), CASES)
def test_checkers(frameworks, exercise_id, right, wrong, hint_word):
    passed = check(exercise_id, right)
    assert passed.status == "passed", passed.text()
    assert check(exercise_id, _stub).status == "not solved"
    failed = check(exercise_id, wrong)
    assert failed.status == "wrong", failed.text()
    assert hint_word in failed.text()

"""04_eager_vs_compiled: the compiling helpers, the checkers, and the records in both tracks."""

from pathlib import Path

import pytest

from course_utils import compiling
from course_utils.checks import check, read_checks
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
C = "04_eager_vs_compiled"
TRACKS = ("pytorch", "tensorflow")


def records(track):
    return by_name(read_records(ROOT / "notebooks" / C / f"{track}.ipynb"))


# --- helper module -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        ((10.0, 0.010, 0.0045), 1818),  # (10 - 0.0045) / 0.0055 = 1817.4
        ((2.0, 0.5, 0.1), 5),
        ((0.05, 0.1, 0.09), 1),
        ((5.0, 0.01, 0.01), None),
        ((3.0, 0.002, 0.003), None),
    ],
)
def test_break_even_steps(args, expected):
    assert compiling.break_even_steps(*args) == expected


@pytest.mark.parametrize(
    "args", [(10.0, 0.010, 0.004), (2.0, 0.5, 0.1), (0.3, 0.2, 0.1), (0.05, 0.1, 0.09)]
)
def test_break_even_agrees_with_compile_pays(args):
    n = compiling.break_even_steps(*args)
    assert compiling.compile_pays(*args, n)
    assert n == 1 or not compiling.compile_pays(*args, n - 1)


def test_counting_backend_counts_recompiles():
    import torch

    def f(x):
        return (x * 2).sin()

    torch._dynamo.reset()
    counter = compiling.CountingBackend()
    g = torch.compile(f, backend=counter, dynamic=False)
    for n in (3, 4, 4):
        g(torch.ones(n))
    assert counter.graphs == 2 and counter.runs == 3
    assert torch.allclose(g(torch.ones(3)), f(torch.ones(3)))


def test_counting_backend_sees_the_recompile_limit_fall_back_to_eager():
    import logging

    import torch
    import torch._dynamo.config as dynamo_config

    torch._logging.set_logs(dynamo=logging.ERROR)
    torch._dynamo.reset()
    counter = compiling.CountingBackend()
    g = torch.compile(lambda x: (x * 2).sin(), backend=counter, dynamic=False)
    calls = dynamo_config.recompile_limit + 3
    for n in range(2, 2 + calls):
        assert torch.allclose(g(torch.ones(n)), (torch.ones(n) * 2).sin())  # still right, eagerly
    assert counter.graphs == dynamo_config.recompile_limit == counter.runs
    torch._logging.set_logs()


def test_lean_forward_passes_match_the_models():
    import numpy as np
    import tensorflow as tf
    import torch

    pt = compiling.torch_mlp(8, 16)
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.allclose(compiling.torch_mlp_lean(pt)(x), pt(x), atol=1e-6)
    k = compiling.keras_mlp(8, 16)
    xt = tf.random.normal((4, 8))
    assert np.allclose(compiling.keras_mlp_lean(k)(xt).numpy(), k(xt).numpy(), atol=1e-6)


def test_tf_graph_ops_shows_grappler_fusing_dense_layers():
    import tensorflow as tf

    k = compiling.keras_mlp(8, 16)
    ops = compiling.tf_graph_ops(tf.function(lambda x: k(x)), tf.ones((2, 8)))
    assert ops["traced"].count("MatMul") == 3 and "BiasAdd" in ops["traced"]
    assert "MatMul" not in ops["optimized"] and len(ops["optimized"]) < len(ops["traced"])
    assert len(ops["kernels"]) == len(ops["optimized"])


def test_speed_verdict_uses_the_iqr_overlap_rule():
    from course_utils.bench import BenchResult

    def res(times):
        return BenchResult(label="x", times=times, warmup=0, device="cpu")

    fast, slow = res([1.0, 1.1, 1.2, 1.3]), res([2.0, 2.1, 2.2, 2.3])
    close = res([3.24e-3, 3.20e-3, 3.30e-3, 3.35e-3])
    other = res([3.26e-3, 3.22e-3, 3.31e-3, 3.36e-3])  # 3.24 vs 3.26 ms medians: noise
    assert compiling.speed_verdict(fast, slow) == "faster"
    assert compiling.speed_verdict(slow, fast) == "slower"
    assert compiling.speed_verdict(close, other).startswith("no clear difference")
    lines = compiling.timing_lines({"eager": (0.1, slow), "compiled": (0.5, fast)})
    assert len(lines) == 3 and "(baseline)" in lines[1] and "faster" in lines[2]


def test_keras_auto_jit_compile_follows_the_accelerators():
    """Keras 3 compile(jit_compile="auto") turns XLA on only where a GPU or TPU is present."""
    import tensorflow as tf

    k = compiling.keras_mlp(8, 16)
    k.compile(optimizer="sgd", loss="mse")
    accelerators = [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
    assert k.jit_compile is bool(accelerators)


def test_explain_summary():
    import torch

    def f(x):
        y = x * 2
        print("break")
        return y.sin()

    torch._dynamo.reset()
    s = compiling.explain_summary(torch._dynamo.explain(f)(torch.ones(2)))
    assert s["graph_count"] == 2 and s["graph_break_count"] == 1
    assert len(s["reasons"]) == 1 and "\n" not in s["reasons"][0]


def test_first_call_and_steady():
    calls = []
    first, result = compiling.first_call_and_steady(lambda: calls.append(1), warmup=1, repeats=4)
    assert first > 0 and result.repeats == 4 and len(calls) == 1 + 1 + 4


def test_same_mlp_in_both_frameworks():
    """Same architecture: same parameter count, and with copied weights the same outputs."""
    import numpy as np
    import torch

    pt = compiling.torch_mlp(8, 16)
    k = compiling.keras_mlp(8, 16)
    assert sum(p.numel() for p in pt.parameters()) == k.count_params()
    linears = [m for m in pt if isinstance(m, torch.nn.Linear)]
    for layer, dense in zip(linears, k.layers, strict=True):
        dense.set_weights([layer.weight.detach().numpy().T, layer.bias.detach().numpy()])
    x = np.random.default_rng(0).standard_normal((4, 8), dtype=np.float32)
    with torch.no_grad():
        out_pt = pt(torch.from_numpy(x)).numpy()
    assert np.allclose(out_pt, k(x).numpy(), atol=1e-5)


# --- checkers ------------------------------------------------------------------------------


def stub(*args):
    raise NotImplementedError


def good_step(x):
    import torch

    y = torch.relu(x) * 2
    return torch.where(y.sum() > 0, y + 1, y)


def wrong_values(x):
    import torch

    return torch.relu(x) * 2 + 1  # forgets the condition


def make_good():
    import tensorflow as tf

    spec = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32)]
    return tf.function(lambda x, s: tf.reduce_sum(x) * s, input_signature=spec)


def make_retracing():
    import tensorflow as tf

    return tf.function(lambda x, s: tf.reduce_sum(x) * s)


def test_graph_break_checker():
    from course_utils.checkers.c04_eager_vs_compiled import reference_step

    ex = f"{C}.pytorch.no_graph_break"
    assert check(ex, good_step).status == "passed"
    assert check(ex, stub).status == "not solved"
    bad = check(ex, wrong_values)
    assert bad.status == "wrong" and "expected" in bad.message
    still_breaks = check(ex, reference_step)
    assert still_breaks.status == "wrong" and "graph break" in still_breaks.message


def test_retrace_checker():
    ex = f"{C}.tensorflow.no_retrace"
    assert check(ex, make_good).status == "passed"
    assert check(ex, stub).status == "not solved"
    bad = check(ex, make_retracing)
    assert bad.status == "wrong" and "traces" in bad.message


def naive_break_even(first, eager, compiled):  # typical mistake: ignores the step in the first call
    return int(first / (eager - compiled)) if compiled < eager else None


@pytest.mark.parametrize("track", TRACKS)
def test_break_even_checkers(track):
    assert check(f"{C}.{track}.break_even_steps", compiling.break_even_steps).status == "passed"
    assert check(f"{C}.{track}.break_even_steps", stub).status == "not solved"
    assert check(f"{C}.{track}.break_even_steps", naive_break_even).status == "wrong"
    assert check(f"{C}.{track}.compile_pays", compiling.compile_pays).status == "passed"
    assert check(f"{C}.{track}.compile_pays", stub).status == "not solved"
    always = check(f"{C}.{track}.compile_pays", lambda *a: True)
    assert always.status == "wrong" and "expected: False" in always.message


# --- stored records ------------------------------------------------------------------------


@pytest.mark.parametrize("track", TRACKS)
def test_timing_records_positive(track):
    r = records(track)
    for size in ("small", "large"):
        for name in (
            "first_call_s",
            "eager_step_s",
            "compiled_step_s",
            "speedup_compiled",
            "speedup_strong",
            "speedup_lean",
        ):
            assert r[f"{name}_{size}"] > 0, (track, name, size)
        # the first call compiles and runs a step: never cheaper than a steady compiled step
        assert r[f"first_call_s_{size}"] > r[f"compiled_step_s_{size}"]
        n = r[f"break_even_steps_{size}"]
        expected = compiling.break_even_steps(
            r[f"first_call_s_{size}"], r[f"eager_step_s_{size}"], r[f"compiled_step_s_{size}"]
        )
        assert n == expected


def test_trace_counts():
    pt, tf = records("pytorch"), records("tensorflow")
    # PyTorch: a new Python value or shape recompiles once, then the value/shape is dynamic
    assert pt["traces_python_scalar"] == 2
    assert pt["traces_new_shapes"] == 2
    assert pt["traces_new_shapes_static"] == 4
    # TensorFlow: every new Python value and every new shape traces again
    assert tf["traces_python_scalar"] == 3
    assert tf["traces_new_shapes"] == 4
    assert tf["traces_new_shapes_reduce_retracing"] == 2
    assert tf["traces_noisy"] == 1
    # both: tensors and dynamic shapes need one trace only
    for r in (pt, tf):
        assert r["traces_tensor_arg"] == 1
        assert r["traces_new_shapes_dynamic"] == 1


def test_pitfall_records():
    pt, tf = records("pytorch"), records("tensorflow")
    # PyTorch: past the recompile limit the calls run eagerly; automatic dynamic avoids it
    assert pt["limit_static_graphs"] == 8 and pt["limit_static_eager_calls"] == 4
    assert pt["limit_dynamic_graphs"] == 2 and pt["limit_dynamic_eager_calls"] == 0
    # TensorFlow: no limit, every shape traces; an input_signature traces once
    assert tf["limit_static_graphs"] == 12 and tf["limit_dynamic_graphs"] == 1
    # side effects: Dynamo replays them; a tf.Variable made once outside survives retraces
    assert pt["side_effect_runs"] == 3 and tf["state_fixed_traces"] == 2
    # Grappler fuses MatMul + BiasAdd (+ Relu): fewer ops after optimisation
    assert tf["graph_ops_traced"] == 8 and tf["graph_ops_optimized"] == 3
    # sizes 0 and 1: PyTorch specialises them unless marked unbacked; TF's signature does not
    assert pt["graphs_size_one"] == 2 and pt["graphs_size_one_unbacked"] == 1
    assert tf["graphs_size_one"] == 1
    # the whole training step: a graph break at backward() in PyTorch, one trace in TF
    assert pt["train_step_graph_breaks"] >= 1 and pt["forward_loss_graph_breaks"] == 0
    assert tf["train_step_traces"] == 1 and tf["functions_run_eagerly_after_fix"] is False


def test_graph_breaks_and_legacy():
    pt, tf = records("pytorch"), records("tensorflow")
    assert pt["graph_count"] == 2 and pt["graph_break_count"] == 1
    assert pt["graph_break_count_fixed"] == 0
    assert pt["legacy_traced_wrong_branch"] is True
    assert tf["legacy_graph_matches_eager"] is True


def test_parity_compiled_matches_eager():
    for track in TRACKS:
        r = records(track)
        assert r["compiled_matches_eager"] is True
        assert r["compiled_models_match_eager"] is True
        assert r["modes_match_eager"] is True
        assert r["compiled_max_abs_diff"] < 1e-5  # float32 rounding only


def test_parity_direct():
    """The lesson's function, compiled in both frameworks, gives the same values."""
    import numpy as np
    import tensorflow as tf
    import torch

    x = np.linspace(-2, 2, 8, dtype=np.float32)
    torch._dynamo.reset()
    pt = torch.compile(lambda t: torch.sin(t) * 2 + t**2, backend="eager")(torch.from_numpy(x))
    tfo = tf.function(lambda t: tf.sin(t) * 2 + t**2, jit_compile=True)(tf.constant(x))
    assert np.allclose(pt.numpy(), tfo.numpy(), atol=1e-5)


def test_solution_checks_all_passed():
    for track in TRACKS:
        path = ROOT / "solutions" / C / f"{track}.ipynb"
        statuses = [c["status"] for c in read_checks(path)]
        assert len(statuses) == 3 and all(s == "passed" for s in statuses), (track, statuses)

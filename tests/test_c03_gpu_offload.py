"""03_gpu_offload: the offload helpers, the checkers, and the records stored in both tracks."""

import time
from pathlib import Path

import pytest

from course_utils import offload
from course_utils.checks import check, read_checks
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
C = "03_gpu_offload"
TRACKS = ("pytorch", "tensorflow")


def records(track):
    return by_name(read_records(ROOT / "notebooks" / C / f"{track}.ipynb"))


# --- helper module -------------------------------------------------------------------------


def test_gflops():
    assert offload.gflops(1000, 2.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "cpu, acc, expected",
    [
        ([1, 2, 8, 40], [5, 5, 6, 7], 128),
        ([1, 2, 4, 8], [5, 5, 6, 9], None),
        ([9, 2, 8, 40], [5, 5, 6, 7], 128),  # a lucky small size does not count
        ([9, 9, 9, 9], [1, 1, 1, 1], 32),
    ],
)
def test_crossover_size(cpu, acc, expected):
    assert offload.crossover_size([32, 64, 128, 256], cpu, acc) == expected


def test_crossover_size_rejects_ragged_input():
    with pytest.raises(ValueError):
        offload.crossover_size([1, 2], [1.0], [1.0, 2.0])


def test_sweep_times_each_size():
    made = []

    def make(n):
        made.append(n)
        return lambda: sum(range(n))

    results = offload.sweep(make, [10, 100], repeats=3, warmup=1)
    assert made == [10, 100]
    assert [r.repeats for r in results] == [3, 3]
    assert all(r.median > 0 for r in results)


def _result(times):
    from course_utils.bench import BenchResult

    return BenchResult(label="t", times=list(times), warmup=0, device="cpu")


def test_best_times_takes_the_minimum():
    # one slowed-down repeat per size (and a median of few repeats) must not bend the curve
    results = [_result([5.0, 1.0, 9.0]), _result([8.0, 20.0, 30.0])]
    assert offload.best_times(results) == [1.0, 8.0]


def test_quartiles():
    q1, q3 = offload.quartiles(_result([1, 2, 3, 4, 5]))
    assert (q1, q3) == (2, 4)
    assert offload.quartiles(_result([3.0])) == (3.0, 3.0)


@pytest.mark.parametrize(
    "candidate, baseline, expected",
    [
        ([1, 1.1, 1.2, 1.3], [2, 2.1, 2.2, 2.3], "faster"),
        ([2, 2.1, 2.2, 2.3], [1, 1.1, 1.2, 1.3], "slower"),
        ([1, 1.5, 2, 2.5], [1.8, 2.0, 2.2, 2.4], "no clear difference on this machine"),
    ],
)
def test_speed_verdict_needs_separate_spreads(candidate, baseline, expected):
    verdict = offload.speed_verdict(_result(candidate), _result(baseline))
    assert verdict.startswith(expected)


def test_plot_crossover_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    fig = offload.plot_crossover([32, 64], {"CPU": [1e-5, 2e-5]})
    assert fig.axes[0].get_xlabel().startswith("matrix size")


# --- checkers ------------------------------------------------------------------------------


def good_timed(fn, sync):
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def unsynced_timed(fn, sync):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stub(*args):
    raise NotImplementedError


def good_crossover(sizes, cpu, acc):
    return offload.crossover_size(sizes, cpu, acc)


def first_faster(sizes, cpu, acc):  # typical mistake: the first size where it is faster
    return next((n for n, c, a in zip(sizes, cpu, acc, strict=True) if a < c), None)


@pytest.mark.parametrize("track", TRACKS)
def test_timed_checker(track):
    assert check(f"{C}.{track}.timed", good_timed).status == "passed"
    assert check(f"{C}.{track}.timed", stub).status == "not solved"
    bad = check(f"{C}.{track}.timed", unsynced_timed)
    assert bad.status == "wrong"
    assert "sync" in bad.message


@pytest.mark.parametrize("track", TRACKS)
def test_crossover_checker(track):
    assert check(f"{C}.{track}.crossover", good_crossover).status == "passed"
    assert check(f"{C}.{track}.crossover", stub).status == "not solved"
    bad = check(f"{C}.{track}.crossover", first_faster)
    assert bad.status == "wrong"
    assert "expected: 128" in bad.message


# --- stored records ------------------------------------------------------------------------


@pytest.mark.parametrize("track", TRACKS)
def test_records_present_and_sane(track):
    r = records(track)
    assert r["accelerator_present"] in (True, False)
    assert r["tensor_mib"] == 64
    assert r["memory_growth_mib"] > 0
    assert r["timing_synced_s"] > 0 and r["timing_unsynced_s"] > 0
    sizes, times = r["matmul_sizes"], r["matmul_cpu_min_s"]
    assert sizes == sorted(sizes) and len(sizes) == len(times) >= 3
    assert all(t > 0 for t in times)
    assert times[-1] > times[0]  # a 16x larger matrix takes longer, whatever the noise
    assert r["matmul_cpu_gflops_max"] > 0
    assert r["mixed_output_dtype"] == "bfloat16"
    assert r["mixed_variable_dtype"] == "float32"
    assert 0 < r["mixed_max_rel_diff"] < 1e-2
    assert r["mixed_speedup"] > 0
    # no accelerator, no accelerator figures: nothing fake is recorded
    if not r["accelerator_present"]:
        assert "crossover_size" not in r and "h2d_bandwidth_gbs" not in r
        assert "h2d_pinned_gbs" not in r


def test_tracks_agree():
    pt, tf = records("pytorch"), records("tensorflow")
    assert pt["placed_result"] == tf["placed_result"] == [12.0, 44.0]
    assert pt["matmul_sizes"] == tf["matmul_sizes"]
    assert pt["accelerator_present"] == tf["accelerator_present"]
    assert pt["tpu_present"] == tf["tpu_present"]
    # same data, same bfloat16 rounding scale: both relative errors are of bfloat16's order
    # (8 mantissa bits, 2**-8 ~ 0.004); a factor of 4 allows for different accumulation orders
    ratio = pt["mixed_max_rel_diff"] / tf["mixed_max_rel_diff"]
    assert 0.25 < ratio < 4


def test_mixed_precision_parity_direct():
    """Compute the bfloat16 matmul in both frameworks on the same data: close to each other."""
    import numpy as np
    import tensorflow as tf
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 32), dtype=np.float32)
    w = rng.standard_normal((32, 32), dtype=np.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pt = (torch.from_numpy(a) @ torch.from_numpy(w)).float().numpy()
    tf_out = tf.cast(tf.cast(a, tf.bfloat16) @ tf.cast(w, tf.bfloat16), tf.float32).numpy()
    full = a @ w
    scale = np.abs(full).max()
    assert np.abs(pt - full).max() / scale < 1e-2
    assert np.abs(tf_out - full).max() / scale < 1e-2
    assert np.abs(pt - tf_out).max() / scale < 2e-2


def test_solution_checks_all_passed():
    for track in TRACKS:
        path = ROOT / "solutions" / C / f"{track}.ipynb"
        statuses = [c["status"] for c in read_checks(path)]
        assert statuses and all(s == "passed" for s in statuses), (track, statuses)


# --- the XLA synchroniser (torch_xla cannot run here: stand-in modules record the calls) -----


def _fake_torch_xla(monkeypatch, *, with_wait):
    import sys
    import types

    calls = []
    xla = types.ModuleType("torch_xla")
    if with_wait:

        def sync(wait=False, reset_scope=True):
            calls.append(("sync", wait))

        xla.sync = sync
    core = types.ModuleType("torch_xla.core")
    xm = types.ModuleType("torch_xla.core.xla_model")
    xm.mark_step = lambda: calls.append(("mark_step",))
    xm.wait_device_ops = lambda devices=(): calls.append(("wait_device_ops",))
    xla.core, core.xla_model = core, xm
    for name, module in (
        ("torch_xla", xla),
        ("torch_xla.core", core),
        ("torch_xla.core.xla_model", xm),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.mark.parametrize("device", ["xla:0", "tpu"])
def test_xla_synchronizer_waits_for_the_device(monkeypatch, device):
    from course_utils.bench import synchronizer

    calls = _fake_torch_xla(monkeypatch, with_wait=True)
    synchronizer(device)()
    assert calls == [("sync", True)]  # torch_xla.sync() alone returns before the device is done


def test_xla_synchronizer_falls_back_to_wait_device_ops(monkeypatch):
    from course_utils.bench import synchronizer

    calls = _fake_torch_xla(monkeypatch, with_wait=False)
    synchronizer("xla:0")()
    assert calls == [("mark_step",), ("wait_device_ops",)]

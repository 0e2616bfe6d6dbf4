"""Helpers for 03_gpu_offload: size sweeps, the CPU-vs-accelerator crossover, its plot, and
speed verdicts that only call a difference when the measurements' spreads allow it.

Nothing here imports a framework: the notebooks pass in the callables to time.
"""

import time

from .bench import BenchResult, synchronizer


def gflops(n, seconds):
    """Return the throughput, in GFLOP/s, of an ``n``x``n`` by ``n``x``n`` matmul taking ``seconds``."""
    return 2 * n**3 / seconds / 1e9


def sweep(make_fn, sizes, *, device="cpu", warmup=2, repeats=10, label="matmul"):
    """Time ``make_fn(n)()`` for each size ``n``, as :func:`course_utils.bench.benchmark` does.

    ``make_fn(n)`` builds the inputs for size ``n`` and returns the zero-argument callable to
    time. Each callable runs ``warmup`` times untimed, then the sizes are timed in ``repeats``
    rounds, each round timing every size once (after one untimed call, so the previous size's
    work does not leak in; synchronised start and end, as ``benchmark``): a burst of background
    load then spreads over all sizes instead of landing on one size's repeats. Returns a list of :class:`~course_utils.bench.BenchResult`, one per size, in
    order. Read a curve from it with :func:`best_times`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    fns = [make_fn(n) for n in sizes]
    sync = synchronizer(device)
    for fn in fns:
        for _ in range(warmup):
            fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, slot in zip(fns, times, strict=True):
            fn()  # untimed: the previous size's work must not leak into this one's time
            sync()
            start = time.perf_counter()
            fn()
            sync()
            slot.append(time.perf_counter() - start)
    return [
        BenchResult(label=f"{label} n={n}", times=t, warmup=warmup, device=str(device))
        for n, t in zip(sizes, times, strict=True)
    ]


def best_times(results):
    """Return the fastest repeat (the minimum, in seconds) of each result from :func:`sweep`.

    Background load on a shared machine can only add time to a repeat, never remove it, so the
    minimum of several repeats is the estimate least disturbed by it; a median of few repeats
    can land on a slowed-down repeat and break the shape of the curve.
    """
    return [r.min for r in results]


def quartiles(result):
    """Return ``(q1, q3)``: the range, in seconds, holding the middle half of ``result``'s repeats.

    ``result`` is a :class:`~course_utils.bench.BenchResult`; its ``iqr`` is ``q3 - q1``.
    """
    import statistics

    if len(result.times) < 2:
        return (result.median, result.median)
    q = statistics.quantiles(result.times, n=4, method="inclusive")
    return (q[0], q[2])


def speed_verdict(candidate, baseline):
    """Compare two :class:`~course_utils.bench.BenchResult` and return a verdict for ``candidate``.

    Returns ``"faster"`` or ``"slower"`` only when the interquartile ranges (see
    :func:`quartiles`) of the two do not overlap, else
    ``"no clear difference on this machine (spreads overlap)"``.
    """
    c_low, c_high = quartiles(candidate)
    b_low, b_high = quartiles(baseline)
    if c_high < b_low:
        return "faster"
    if c_low > b_high:
        return "slower"
    return "no clear difference on this machine (spreads overlap)"


def crossover_size(sizes, base_times, other_times):
    """Return the smallest size from which ``other`` is faster than ``base`` at every larger size.

    ``sizes`` is increasing; ``base_times`` (e.g. the CPU) and ``other_times`` (e.g. the
    accelerator including transfers) are the matching times. Returns None when ``other`` is
    not faster at the largest size (no crossover in the range measured).
    """
    if not (len(sizes) == len(base_times) == len(other_times)):
        raise ValueError("sizes and the two lists of times must have the same length")
    found = None
    for n, base, other in reversed(list(zip(sizes, base_times, other_times, strict=True))):
        if other < base:
            found = n
        else:
            break
    return found


def plot_crossover(
    sizes, curves, *, title="matrix multiply time against size", ylabel="time (ms)", ax=None
):
    """Plot ``curves`` (``{label: list of seconds}``) against ``sizes`` on log-log axes.

    Returns the matplotlib figure; the caller shows it with ``plt.show()``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    else:
        fig = ax.figure
    for label, times in curves.items():
        ax.plot(sizes, [t * 1e3 for t in times], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("matrix size n (n x n)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig

"""Helpers for 03_gpu_offload: size sweeps, the CPU-vs-accelerator crossover, and its plot.

Nothing here imports a framework: the notebooks pass in the callables to time.
"""

from .bench import benchmark


def gflops(n, seconds):
    """Return the throughput, in GFLOP/s, of an ``n``x``n`` by ``n``x``n`` matmul taking ``seconds``."""
    return 2 * n**3 / seconds / 1e9


def sweep(make_fn, sizes, *, device="cpu", warmup=2, repeats=5, label="matmul"):
    """Time ``make_fn(n)()`` for each size ``n`` with :func:`course_utils.bench.benchmark`.

    ``make_fn(n)`` builds the inputs for size ``n`` and returns the zero-argument callable to
    time. Returns a list of :class:`~course_utils.bench.BenchResult`, one per size, in order.
    """
    results = []
    for n in sizes:
        fn = make_fn(n)
        results.append(
            benchmark(fn, device=device, warmup=warmup, repeats=repeats, label=f"{label} n={n}")
        )
    return results


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


def plot_crossover(sizes, curves, *, title="matrix multiply time against size", ax=None):
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
    ax.set_ylabel("median time (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig

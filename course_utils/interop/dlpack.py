"""DLPack: tensors between PyTorch, TensorFlow and NumPy without copies. Where a tensor lives
(:func:`address`, :func:`shares_memory`), one crossing tried and its verdict (shared, copied or
error), the C++ assertion a crashed process left, and the timing and plot of round trips.
"""

import sys
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------- DLPack: tensors without copies


def address(x):
    """Return the memory address of the first element of a CPU tensor or array (an int).

    Works for PyTorch tensors, NumPy arrays and TensorFlow tensors (read through DLPack, which
    shares the buffer, so asking never copies). Two arrays with the same address and an
    overlapping extent share memory.
    """
    if hasattr(x, "data_ptr"):  # torch.Tensor
        return x.data_ptr()
    if hasattr(x, "read_value"):  # tf.Variable: the buffer that holds its current value
        x = x.value()
    if isinstance(x, np.ndarray):
        return x.__array_interface__["data"][0]
    if "torch" in sys.modules:  # TensorFlow tensors: through DLPack, which never copies
        import torch

        return torch.from_dlpack(x).data_ptr()
    return np.from_dlpack(x).__array_interface__["data"][0]


def shares_memory(a, b):
    """Return True when ``a`` and ``b`` (any mix of PyTorch, TensorFlow and NumPy arrays on the
    CPU) start at the same address, i.e. one is a view of the other's memory."""
    return address(a) == address(b)


@dataclass
class Crossing:
    """The outcome of moving one value across: what came out, whether it shares the source's
    memory (None when it failed), and the error as "Type: first line" when it raised."""

    result: object = field(repr=False)
    shares: bool | None
    error: str | None

    @property
    def verdict(self):
        """ "shared", "copied" or "error", computed from the outcome."""
        if self.error:
            return "error"
        return "shared" if self.shares else "copied"


def crossing(source, cross):
    """Call ``cross(source)`` and return a :class:`Crossing`: the result, whether it shares
    ``source``'s memory, or the error it raised (caught: the error is the lesson)."""
    try:
        result = cross(source)
    except Exception as err:  # the frameworks raise their own types; show them all
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return Crossing(None, None, f"{type(err).__name__}: {first}")
    return Crossing(result, shares_memory(source, result), None)


def crossing_rows(cases):
    """Try each case and return one row per case: ``{"case", "verdict", "error", "fix"}``.

    ``cases`` is a list of ``(name, make, cross, fix)``: ``make()`` builds the source,
    ``cross(source)`` is the crossing under test, ``fix(source)`` the usual remedy (or None).
    ``verdict`` and ``fix`` are "shared", "copied" or "error" (:attr:`Crossing.verdict`; ``fix``
    is None without a remedy); ``error`` is the crossing's exception type name, or None.
    """
    rows = []
    for name, make, cross, fix in cases:
        source = make()
        tried = crossing(source, cross)
        rows.append(
            {
                "case": name,
                "verdict": tried.verdict,
                "error": tried.error.split(":")[0] if tried.error else None,
                "fix": crossing(source, fix).verdict if fix is not None else None,
            }
        )
    return rows


def format_crossings(rows):
    """Return :func:`crossing_rows` as a plain-text table."""
    from ..export import format_table

    columns = [
        ("case", "crossing", "s"),
        ("verdict", "result", "s"),
        ("error", "error", "s"),
        ("fix", "with the usual fix", "s"),
    ]
    return format_table(rows, columns)


def check_failure(done):
    """Return the "Check failed: ..." part of a C++ assertion in a :class:`Fresh`'s stderr (the
    time stamp and process id before it change every run), or None when there is none."""
    for line in done.lines("stderr"):
        if "Check failed" in line:
            return line[line.index("Check failed") :].strip()
    return None


def time_round_trips(routes, sizes, *, repeats=5, make=None):
    """Time each route's round trip for tensors of ``sizes`` elements; return a list of rows.

    ``routes`` maps a name to ``trip(x) -> y``; ``make(n)`` builds the input (default: a
    PyTorch float32 tensor of ``n`` elements). Each row is ``{"route", "elements", "bytes",
    "median_s", "min_s"}``, from ``repeats`` timed calls after one untimed warm-up.
    """
    from ..bench import benchmark

    if make is None:
        import torch

        def make(n):
            return torch.rand(n)

    rows = []
    for n in sizes:
        x = make(n)
        nbytes = _nbytes(x)
        for name, trip in routes.items():
            result = benchmark(
                lambda trip=trip, x=x: trip(x), warmup=1, repeats=repeats, label=name
            )
            rows.append(
                {
                    "route": name,
                    "elements": int(n),
                    "bytes": nbytes,
                    "median_s": result.median,
                    "min_s": result.min,
                }
            )
    return rows


def _nbytes(x):
    if hasattr(x, "element_size"):  # torch.Tensor
        return x.element_size() * x.nelement()
    if hasattr(x, "nbytes") and isinstance(x.nbytes, int):  # NumPy
        return x.nbytes
    return int(np.prod(x.shape)) * x.dtype.size  # tf.Tensor


def plot_round_trips(rows, title=None):
    """Plot the median round-trip time of every route against the tensor size (log-log);
    return the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for route in dict.fromkeys(r["route"] for r in rows):
        mine = [r for r in rows if r["route"] == route]
        ax.loglog(
            [r["bytes"] for r in mine], [r["median_s"] * 1e6 for r in mine], marker="o", label=route
        )
    ax.set_xlabel("tensor size (bytes)")
    ax.set_ylabel("median round trip (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

"""The rules that turn measured figures into decisions: the one timing rule of the lab
(:func:`decide_timing`, per-process figures whose ranges must be apart by :data:`MIN_EFFECT`),
the busy-machine check (:func:`machine_busy`), the memory comparison (:func:`memory_difference`),
and small helpers on per-process figures (spreads, run totals, time formatting).
"""

import statistics
from dataclasses import dataclass

from .catalogue import MEMORY_ATOL_MIB, MEMORY_RTOL, MIN_EFFECT, MIN_PROCESSES, RUN_STEPS

# ---------------------------------------------------------------- figures from measurements


def quartiles(times):
    """Return ``(q1, median, q3)`` of a list of seconds (all three equal for one value)."""
    if len(times) < 2:
        return (times[0],) * 3
    q1, med, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return (q1, med, q3)


def memory_difference(a, b, rtol=MEMORY_RTOL, atol=MEMORY_ATOL_MIB):
    """Return "lower", "higher" or "same": how ``a`` compares with ``b`` (MiB), where a
    difference counts only when it exceeds ``rtol`` of the smaller figure and ``atol`` MiB."""
    margin = max(rtol * min(abs(a), abs(b)), atol)
    if a < b - margin:
        return "lower"
    if a > b + margin:
        return "higher"
    return "same"


def fmt_time(seconds):
    """Format seconds like :func:`course_utils.bench.fmt_seconds`."""
    from ..bench import fmt_seconds

    return fmt_seconds(seconds)


def spread(values):
    """Return ``(lowest, median, highest)`` of per-process figures: the spread between processes."""
    values = sorted(values)
    return values[0], statistics.median(values), values[-1]


@dataclass(frozen=True)
class Decision:
    """What the timing rule decided for two lists of per-process figures (lower is faster):
    ``winner`` "a", "b" or None (inconclusive), the ``reason``, and ``ratio`` = slower median /
    faster median (None when a side is missing)."""

    winner: str | None
    reason: str
    ratio: float | None = None


def decide_timing(a, b, labels=("PyTorch", "TensorFlow"), busy=None, fmt=None):
    """The one timing rule of the lab (:data:`TIMING_RULE`): which of ``a`` and ``b`` (lists of
    seconds, one figure per fresh process) is clearly faster, or None with the reason.

    In order: a side with no figures, or fewer than :data:`MIN_PROCESSES`, is inconclusive; the
    ranges (lowest to highest process) must not overlap; the slower median must be at least
    :data:`MIN_EFFECT` slower than the faster one; and ``busy`` (:func:`machine_busy`'s sentence)
    makes any answer inconclusive, saying what the figures alone said.
    """
    fmt = fmt or fmt_time
    for label, values in zip(labels, (a, b), strict=True):
        if not values:
            return Decision(None, f"{label} was not measured.")
    for label, values in zip(labels, (a, b), strict=True):
        if len(values) < MIN_PROCESSES:
            return Decision(
                None,
                f"{label} was timed in {len(values)} process(es); the rule needs {MIN_PROCESSES}.",
            )
    (a_lo, a_med, a_hi), (b_lo, b_med, b_hi) = spread(a), spread(b)
    ratio = max(a_med, b_med) / min(a_med, b_med) if min(a_med, b_med) > 0 else float("inf")
    faster = "a" if a_med <= b_med else "b"
    name = labels[0] if faster == "a" else labels[1]
    text = (
        f"{labels[0]} {fmt(a_med)} (processes {fmt(a_lo)}-{fmt(a_hi)}), {labels[1]} {fmt(b_med)} "
        f"(processes {fmt(b_lo)}-{fmt(b_hi)})"
    )
    if not (a_hi < b_lo or b_hi < a_lo):
        return Decision(None, text + ": the ranges between processes overlap.", ratio)
    if ratio - 1 < MIN_EFFECT:
        return Decision(
            None,
            text + f": {name} is faster by {ratio - 1:.0%} only, below the minimum effect of "
            f"{MIN_EFFECT:.0%}.",
            ratio,
        )
    if busy:
        return Decision(
            None, f"{busy} The figures alone say {name} is {ratio:.2f}x faster: {text}.", ratio
        )
    return Decision(faster, text + f": {name} {ratio:.2f}x faster, the ranges apart.", ratio)


# Other programs' CPU use, as a share of the CPUs, above which timings are doubtful: measured
# directly (Linux), or read from the 1-minute load average, which also remembers the last minute.
BUSY_SHARE = {"cpu use": 0.25, "load average": 0.5}


def machine_busy(results):
    """Return why this run's timings cannot be trusted (a sentence naming the worst reading), or
    None.

    Every timing process measures how much CPU other programs use, for half a second before it
    imports its framework and again when it has finished (``result["loads"]``: dicts with
    ``process``, ``when``, ``value``, ``kind`` "cpu use" on Linux or "load average" elsewhere,
    and ``cpus``). The **highest** of these readings counts: timings are doubtful when other
    programs were busy at any point, and not evenly so: threads that wait for each other at a
    barrier after every parallel operation (PyTorch's OpenMP) lose far more than threads that
    take work from a queue (TensorFlow's). Above :data:`BUSY_SHARE` of the CPUs the figures
    measure the machine's load as much as the frameworks.
    """
    worst, worst_share = None, -1.0
    for result in results.values():
        for reading in result.get("loads") or ():
            value, cpus = reading.get("value"), reading.get("cpus")
            if value is None or not cpus:
                continue
            kind = reading.get("kind") or "load average"
            share = value / (BUSY_SHARE[kind] * cpus)
            if share > worst_share:
                worst, worst_share = {**reading, "kind": kind}, share
    if worst is None or worst_share <= 1:
        return None
    load, cpus, kind = worst["value"], worst["cpus"], worst["kind"]
    limit = BUSY_SHARE[kind] * cpus
    where = f"{worst.get('when', 'around')} {worst.get('process', 'a timing process')}"
    if kind == "cpu use":
        measured = f"other programs used {load:.1f} of {cpus} CPUs {where}"
    else:
        measured = f"1-minute load average {load:.1f} on {cpus} CPUs {where}"
    return (
        f"The machine was busy while timing (highest reading: {measured}, above {limit:g}): "
        "other programs' work is in these figures."
    )


def run_totals(entry, steps=RUN_STEPS):
    """Per-process seconds of a run of ``steps`` steps: each process's first call plus
    ``steps - 1`` times its median steady step."""
    return [f + (steps - 1) * t for f, t in zip(entry["first_s"], entry["times"], strict=True)]


def _median(values):
    return statistics.median(values) if values else float("inf")


def op_comparison(pt_ops, tf_ops, busy=None):
    """Return ``{op: Decision}`` for every operation both measured (``{op: {"times"}}``, one
    figure per process): :func:`decide_timing` with PyTorch as "a", TensorFlow as "b"."""
    return {
        op: decide_timing(pt_ops[op]["times"], tf_ops[op]["times"], busy=busy)
        for op in pt_ops
        if op in tf_ops
    }

"""Checkers for 03_gpu_offload: timing with synchronisation, and finding the crossover size."""

import time

from ..checks import Mismatch, exercise, expect_equal

TIMED_HINT = (
    "Call sync() before starting the clock (earlier work must not count) and again after "
    "fn() (its queued work must count), then return the elapsed seconds as a float."
)


class _FakeDevice:
    """A pretend accelerator: fn() only queues work; sync() waits ``delay`` s for it to finish."""

    def __init__(self, delay):
        self.delay, self.events, self.pending = delay, [], False

    def fn(self):
        self.events.append("fn")
        self.pending = True

    def sync(self):
        self.events.append("sync")
        if self.pending:
            time.sleep(self.delay)
            self.pending = False


def _check_timed(timed):
    dev = _FakeDevice(0.1)  # long enough that a busy machine's scheduling noise stays small
    dev.pending = True  # work queued before the timing starts must not be counted
    elapsed = timed(dev.fn, dev.sync)
    if not isinstance(elapsed, float):
        raise Mismatch(
            "timed() should return the elapsed seconds", "a float", type(elapsed).__name__
        )
    if "fn" not in dev.events:
        raise Mismatch("timed() never called fn()", "fn called once", dev.events, TIMED_HINT)
    first_fn = dev.events.index("fn")
    if "sync" not in dev.events[:first_fn]:
        raise Mismatch(
            "no sync() before fn(): earlier queued work would be counted",
            "['sync', 'fn', 'sync']",
            dev.events,
            TIMED_HINT,
        )
    if "sync" not in dev.events[first_fn + 1 :]:
        raise Mismatch(
            "no sync() after fn(): the clock stops before the device has done the work",
            "['sync', 'fn', 'sync']",
            dev.events,
            TIMED_HINT,
        )
    if not 0.095 <= elapsed < 0.19:
        raise Mismatch(
            "the time should cover the work the device finishes at sync() (0.1 s), and only once",
            "about 0.1",
            f"{elapsed:.3f}",
            TIMED_HINT,
        )
    return "sync before, sync after: the queued work is counted, earlier work is not."


@exercise("03_gpu_offload.pytorch.timed", "Time a call on an asynchronous device", hint=TIMED_HINT)
def timed_torch(timed):
    return _check_timed(timed)


@exercise(
    "03_gpu_offload.tensorflow.timed", "Time a call on an asynchronous device", hint=TIMED_HINT
)
def timed_tf(timed):
    return _check_timed(timed)


CROSS_HINT = (
    "Walk from the largest size down while the accelerator is faster; the answer is the last "
    "size where that still held (None if it is not faster at the largest size)."
)
CROSS_CASES = [
    # sizes, cpu, accelerator: expected
    (([32, 64, 128, 256], [1, 2, 8, 40], [5, 5, 6, 7]), 128),
    (([32, 64, 128, 256], [1, 2, 4, 8], [5, 5, 6, 9]), None),
    (([32, 64, 128, 256], [9, 2, 8, 40], [5, 5, 6, 7]), 128),  # faster at 32 by noise only
    (([32, 64], [9, 9], [1, 1]), 32),
]


def _check_crossover(crossover):
    from ..offload import crossover_size

    for (sizes, cpu, acc), expected in CROSS_CASES:
        assert crossover_size(sizes, cpu, acc) == expected  # the reference agrees
        expect_equal(
            f"crossover({sizes}, cpu={cpu}, accelerator={acc})",
            crossover(sizes, cpu, acc),
            expected,
            hint=CROSS_HINT,
        )
    return "the crossover is where the accelerator becomes, and stays, faster."


@exercise("03_gpu_offload.pytorch.crossover", "Find the crossover size", hint=CROSS_HINT)
def crossover_torch(crossover):
    return _check_crossover(crossover)


@exercise("03_gpu_offload.tensorflow.crossover", "Find the crossover size", hint=CROSS_HINT)
def crossover_tf(crossover):
    return _check_crossover(crossover)

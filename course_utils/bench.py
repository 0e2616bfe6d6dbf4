"""Honest timing: warm-up, synchronisation of asynchronous devices, repeats, median and spread."""

import statistics
import sys
import time
from dataclasses import dataclass, field


@dataclass
class BenchResult:
    """Timings of one benchmark, in seconds. ``peak_bytes`` is None unless memory was asked for."""

    label: str
    times: list = field(repr=False)
    warmup: int
    device: str
    peak_bytes: int | None = None
    peak_kind: str | None = None

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def iqr(self):
        """Interquartile range (spread of the middle half of the repeats)."""
        if len(self.times) < 2:
            return 0.0
        q = statistics.quantiles(self.times, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def min(self):
        return min(self.times)

    @property
    def repeats(self):
        return len(self.times)

    def speedup_over(self, other):
        """Return how many times faster this result is than ``other`` (ratio of medians)."""
        return other.median / self.median

    def as_dict(self):
        return {
            "label": self.label,
            "device": self.device,
            "median_s": self.median,
            "iqr_s": self.iqr,
            "min_s": self.min,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "peak_bytes": self.peak_bytes,
            "peak_kind": self.peak_kind,
        }

    def __str__(self):
        text = f"{self.label}: median {fmt_seconds(self.median)} (IQR {fmt_seconds(self.iqr)}, n={self.repeats}, {self.device})"
        if self.peak_bytes is not None:
            text += f", peak {self.peak_bytes / 2**20:.1f} MiB ({self.peak_kind})"
        return text


def fmt_seconds(seconds):
    """Format a duration with a sensible unit: '812 us', '3.40 ms', '1.25 s'."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _kind(device):
    text = str(device).lower()
    for kind in ("cuda", "mps", "xla", "tpu", "gpu"):
        if kind in text:
            return kind
    return "cpu"


def synchronizer(device):
    """Return a function that waits until all queued work on ``device`` has finished.

    ``device`` is a ``torch.device``, a PyTorch device string (``"cuda:0"``), or a TensorFlow
    device string (``"/GPU:0"``). On the CPU the work is already done when the call returns.
    """
    kind = _kind(device)
    text = str(device)
    if kind == "cpu":
        return lambda: None
    if text.startswith("/"):  # TensorFlow device strings start with a slash
        import tensorflow as tf

        return tf.test.experimental.sync_devices
    import torch

    if kind == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if kind == "mps":
        return torch.mps.synchronize
    if kind in ("xla", "tpu"):
        return _xla_synchronizer()
    raise ValueError(f"cannot synchronise unknown device {device!r}")


def _xla_synchronizer():
    """Return a function that runs the pending XLA graph and waits until the device is done.

    ``torch_xla.sync()`` only launches the graph (``wait=False`` by default), so a timing around
    it would measure the launch. ``sync(wait=True)`` blocks until the execution has finished;
    releases without that argument use ``xm.mark_step()`` then ``xm.wait_device_ops()``.
    """
    import inspect

    import torch_xla

    sync = getattr(torch_xla, "sync", None)
    try:
        takes_wait = sync is not None and "wait" in inspect.signature(sync).parameters
    except (TypeError, ValueError):  # a builtin without a readable signature
        takes_wait = False
    if takes_wait:
        return lambda: sync(wait=True)
    import torch_xla.core.xla_model as xm

    def mark_step_and_wait():
        xm.mark_step()
        xm.wait_device_ops()

    return mark_step_and_wait


class _Memory:
    """Peak memory over a block: the accelerator's allocator if there is one, else process RSS."""

    def __init__(self, device):
        self.text, self.kind = str(device), _kind(device)
        self.tf = self.text.startswith("/")  # TensorFlow device strings start with a slash

    def reset(self):
        if self.kind == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.text)
        elif self.kind == "gpu" and self.tf:
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats(self.text.strip("/"))
        else:
            reset_process_peak()

    def peak(self):
        if self.kind == "cuda":
            import torch

            return torch.cuda.max_memory_allocated(self.text), "CUDA allocator peak"
        if self.kind == "gpu" and self.tf:
            import tensorflow as tf

            info = tf.config.experimental.get_memory_info(self.text.strip("/"))
            return info["peak"], "TensorFlow GPU allocator peak"
        return process_peak_rss(), "process peak RSS"


def process_peak_rss():
    """Return this process's peak resident memory in bytes (Linux VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def process_rss():
    """Return this process's current resident memory in bytes (Linux), else its peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return process_peak_rss()


def reset_process_peak():
    """Reset the process's peak-RSS mark where the OS allows it (Linux); return True if it did."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def benchmark(fn, *, device="cpu", warmup=3, repeats=20, label=None, memory=False):
    """Time ``fn()`` and return a :class:`BenchResult`.

    ``fn`` runs ``warmup`` times untimed (compilation, caches, lazy allocation), then
    ``repeats`` times, each timed from a synchronised start to a synchronised end, so queued
    asynchronous work on an accelerator is counted. ``memory=True`` also records the peak
    memory during the timed repeats.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    sync = synchronizer(device)
    for _ in range(warmup):
        fn()
    sync()
    probe = _Memory(device) if memory else None
    if probe:
        probe.reset()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    peak, kind = probe.peak() if probe else (None, None)
    return BenchResult(
        label=label or getattr(fn, "__name__", "fn"),
        times=times,
        warmup=warmup,
        device=str(device),
        peak_bytes=peak,
        peak_kind=kind,
    )

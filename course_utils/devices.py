"""Pick a device in either framework from an explicit request.

``request`` is one of ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``, ``"tpu"``. Asking for a
device that is not there raises :class:`DeviceNotAvailable` with what *is* there, unless a
``fallback`` is given: then the fallback is used and a :class:`DeviceFallbackWarning` says so.
"""

import os
import warnings
from pathlib import Path

from .errors import CourseError

REQUESTS = ("auto", "cpu", "cuda", "mps", "tpu")


class DeviceNotAvailable(CourseError):
    """The requested device is not present, or the installed framework build cannot use it."""


class DeviceFallbackWarning(UserWarning):
    """A device was requested, was not there, and the fallback was used instead."""


def tpu_hint():
    """Return a description of a TPU seen on this host (without importing a framework), or None."""
    if Path("/dev/accel0").exists() or any(Path("/dev").glob("vfio/[0-9]*")):
        return "TPU chips under /dev (a TPU VM, e.g. Colab's v5e runtime)"
    for var in ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE"):
        if os.environ.get(var):
            return f"${var} is set"
    return None


def _normalise(request):
    name = str(request).strip().lower()
    if name == "gpu":
        name = "cuda"
    base, _, index = name.partition(":")
    if base not in REQUESTS:
        raise CourseError(f"unknown device {request!r}: choose one of {', '.join(REQUESTS)}")
    if index and (not index.isdigit() or base in ("auto", "cpu")):
        raise CourseError(f"cannot read device {request!r}: write e.g. 'cuda' or 'cuda:1'")
    return name, base


def _check_index(name, framework, count):
    """Raise DeviceNotAvailable when ``name`` asks for device number ``count`` or above."""
    _, _, index = name.partition(":")
    if index and int(index) >= count:
        raise DeviceNotAvailable(
            f"{framework}: device {name!r} was requested but only {count} device(s) of that kind "
            f"exist here (numbered from 0)."
        )


def _missing(request, framework, available, why):
    return DeviceNotAvailable(
        f"{framework}: device {request!r} was requested but is not available ({why}). "
        f"Available here: {', '.join(available)}. Use device='auto' to take the best one "
        "present, or pass fallback='cpu' to run on the CPU instead."
    )


def _resolve(name, base, available, framework, fallback, why):
    if base in available:
        return name
    if fallback is None:
        raise _missing(name, framework, available, why)
    warnings.warn(
        f"{framework}: {name!r} is not available ({why}); using {fallback!r} instead.",
        DeviceFallbackWarning,
        stacklevel=3,
    )
    return fallback


def torch_available():
    """Return the device kinds PyTorch can use here, best first (always ends with 'cpu')."""
    import torch

    kinds = []
    if _torch_xla_device() is not None:
        kinds.append("tpu")
    if torch.cuda.is_available():
        kinds.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        kinds.append("mps")
    return [*kinds, "cpu"]


def _torch_xla_device():
    try:
        import torch_xla  # noqa: F401  (only on TPU hosts)
    except ImportError:
        return None
    try:
        import torch_xla.core.xla_model as xm

        return xm.xla_device()
    except Exception:  # torch_xla installed but no TPU attached
        return None


def torch_device(request="auto", *, fallback=None):
    """Return a ``torch.device`` for ``request`` (see module docstring)."""
    import torch

    name, base = _normalise(request)
    available = torch_available()
    if base == "auto":
        base = name = available[0]
    why = {
        "cuda": f"torch {torch.__version__} sees no CUDA device"
        + (" (this is a CPU-only build)" if torch.version.cuda is None else ""),
        "mps": "Apple's Metal (MPS) backend needs a Mac with Apple silicon",
        "tpu": "no TPU found through torch_xla (install torch_xla on a TPU runtime)",
    }.get(base, "")
    chosen = _resolve(name, base, available, "PyTorch", fallback, why)
    if chosen.startswith("tpu"):
        return _torch_xla_device()
    if chosen.startswith("cuda"):
        _check_index(chosen, "PyTorch", torch.cuda.device_count())
    return torch.device(chosen)


def tf_available():
    """Return the device kinds TensorFlow can use here, best first (always ends with 'cpu')."""
    import tensorflow as tf

    kinds = []
    if tf.config.list_logical_devices("TPU"):
        kinds.append("tpu")
    if tf.config.list_physical_devices("GPU"):
        # TensorFlow calls every accelerator it drives through CUDA or Metal a "GPU".
        kinds.append("mps" if _is_apple() else "cuda")
    return [*kinds, "cpu"]


def _is_apple():
    import platform

    return platform.system() == "Darwin"


def tf_device(request="auto", *, fallback=None):
    """Return a TensorFlow device string (``"/CPU:0"``, ``"/GPU:0"``, ``"/TPU:0"``) for ``request``.

    For ``"tpu"`` the TPU system is initialised first (Colab's TPU runtime); use the string with
    ``tf.device(...)``, or build a ``tf.distribute.TPUStrategy`` for Keras training.
    """
    import tensorflow as tf

    name, base = _normalise(request)
    if base in ("tpu", "auto") and tpu_hint() and not tf.config.list_logical_devices("TPU"):
        _init_tf_tpu()
    available = tf_available()
    if base == "auto":
        base = name = available[0]
    why = {
        "cuda": f"TensorFlow {tf.__version__} sees no GPU"
        + (" (tensorflow-cpu never does)" if not tf.test.is_built_with_cuda() else ""),
        "mps": "TensorFlow reaches Apple GPUs only through the tensorflow-metal plug-in",
        "tpu": "no TPU system could be initialised",
    }.get(base, "")
    chosen = _resolve(name, base, available, "TensorFlow", fallback, why)
    if chosen.startswith(("cuda", "mps")):
        _check_index(chosen, "TensorFlow", len(tf.config.list_physical_devices("GPU")))
    index = chosen.split(":")[1] if ":" in chosen else "0"
    kind = chosen.split(":")[0]
    return {"cpu": "/CPU", "cuda": "/GPU", "mps": "/GPU", "tpu": "/TPU"}[kind] + f":{index}"


def _init_tf_tpu():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except Exception:  # no TPU, or a TensorFlow build without TPU support
        return None

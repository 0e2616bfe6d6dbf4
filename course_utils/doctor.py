"""The environment doctor: versions, devices, Colab, and what the course needs."""

import importlib.metadata as md
import os
import platform
import re
import sys

from packaging.requirements import Requirement

from . import cpu
from .devices import tpu_hint

KEY_PACKAGES = (
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "papermill",
    "nbval",
    "jupyterlab",
    "ipywidgets",
)
FRAMEWORKS = ("torch", "tensorflow")


def version(dist):
    """Return the installed version of distribution ``dist``, or None (without importing it)."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def in_colab():
    """Return True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def memory_gb():
    """Return the machine's total memory in GiB (None where it cannot be read)."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def requirements():
    """Check the installed packages against course-utils' declared requirements.

    Returns a list of dicts ``{name, wanted, installed, ok}``; TensorFlow counts as present
    when either ``tensorflow`` or ``tensorflow-cpu`` satisfies the range.
    """
    try:
        declared = md.requires("course-utils") or []
    except md.PackageNotFoundError:
        return []
    rows, seen = [], set()
    for line in declared:
        req = Requirement(line)
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)", str(req.marker or ""))
        if extra and extra.group(1) == "dev":
            continue
        name = "tensorflow" if req.name.startswith("tensorflow") else req.name
        if name in seen:
            continue
        seen.add(name)
        candidates = ("tensorflow", "tensorflow-cpu") if name == "tensorflow" else (req.name,)
        installed = next((v for v in map(version, candidates) if v), None)
        ok = installed is not None and req.specifier.contains(installed, prereleases=True)
        rows.append({"name": name, "wanted": str(req.specifier), "installed": installed, "ok": ok})
    return rows


def torch_devices():
    """Return what PyTorch sees: version, CUDA build and devices, MPS, TPU (torch_xla)."""
    import torch

    from .devices import torch_available

    info = {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "threads": torch.get_num_threads(),
        "cpu_kernels": cpu.torch_backends(),
    }
    info["available"] = torch_available()
    return info


def tf_devices():
    """Return what TensorFlow sees: version, CUDA build, GPUs, TPUs."""
    import tensorflow as tf

    from .devices import tf_available

    return {
        "version": tf.__version__,
        "keras": version("keras"),
        "cuda_build": tf.test.is_built_with_cuda(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tpus": [d.name for d in tf.config.list_logical_devices("TPU")],
        "available": tf_available(),
        "cpu_kernels": cpu.tf_backends(),
    }


def environment(frameworks=FRAMEWORKS):
    """Return the doctor's findings as a dict.

    Only the frameworks named in ``frameworks`` are imported to ask for their devices; the
    versions of the others are read from package metadata. :func:`course_utils.quiet` runs
    first, so importing TensorFlow prints no C++ log lines.
    """
    from .quiet import quiet

    if "tensorflow" not in sys.modules:  # later, quiet() could only warn that it is too late
        quiet()
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": {
            "model": cpu.model(),
            "extensions": cpu.extensions(),
            "kernel_selection": cpu.selection(),
        },
        "memory_gb": memory_gb(),
        "colab": in_colab(),
        "tpu_host": tpu_hint(),
        "packages": {name: version(name) for name in KEY_PACKAGES},
        "requirements": requirements(),
    }
    probes = {"torch": torch_devices, "tensorflow": tf_devices}
    for name in frameworks:
        if name not in probes:
            from .errors import CourseError

            raise CourseError(f"unknown framework {name!r}: choose from {', '.join(probes)}")
        try:
            report[name] = probes[name]()
        except ImportError as err:
            report[name] = {"error": f"cannot import {name}: {err}"}
    report["problems"] = problems(report)
    return report


def problems(report):
    """Return the list of human-readable problems found in a doctor report."""
    found = []
    for row in report["requirements"]:
        if row["installed"] is None:
            found.append(f"{row['name']} is not installed (the course needs {row['wanted']})")
        elif not row["ok"]:
            found.append(f"{row['name']} {row['installed']} is outside {row['wanted']}")
    for name in FRAMEWORKS:
        if "error" in report.get(name, {}):
            found.append(report[name]["error"])
    return found


def format_report(report):
    """Return the doctor report as readable text."""
    lines = [
        f"Python     {report['python']} on {report['platform']} ({report['machine']})",
        f"CPU        {report['cpu']['model']}, {report['cpu_count']} cores, "
        f"memory {report['memory_gb']} GiB",
        f"CPU ISA    {' '.join(report['cpu']['extensions']) or 'not reported'}",
        f"Colab      {'yes' if report['colab'] else 'no'}",
        f"TPU host   {report['tpu_host'] or 'no'}",
    ]
    chosen = report["cpu"]["kernel_selection"]
    if chosen:
        lines.append("Kernels    " + " ".join(f"{k}={v}" for k, v in chosen.items()))
    if "torch" in report and "error" not in report["torch"]:
        t = report["torch"]
        cuda = ", ".join(t["cuda"]) or "none"
        lines.append(
            f"PyTorch    {t['version']}  CUDA build: {t['cuda_build'] or 'no'}  GPUs: {cuda}  "
            f"MPS: {'yes' if t['mps'] else 'no'}  -> devices {t['available']}"
        )
        k = t["cpu_kernels"]
        lines.append(
            f"  CPU      kernels {k['capability']}, BLAS {k['blas']}, oneDNN {k['onednn'] or 'no'}, "
            f"threads {k['threads']} (inter-op {k['interop_threads']})"
        )
    if "tensorflow" in report and "error" not in report["tensorflow"]:
        t = report["tensorflow"]
        lines.append(
            f"TensorFlow {t['version']} (Keras {t['keras']})  CUDA build: "
            f"{'yes' if t['cuda_build'] else 'no'}  GPUs: {len(t['gpus'])}  TPUs: {len(t['tpus'])}"
            f"  -> devices {t['available']}"
        )
        k = t["cpu_kernels"]
        ops = {True: "on", False: "off", None: "unknown"}[k["onednn_ops"]]
        lines.append(
            f"  CPU      kernels {k['kernels']}, oneDNN custom ops {ops}, threads {k['threads']} "
            f"(inter-op {k['interop_threads']})"
        )
    lines.append("Packages   " + ", ".join(f"{k} {v}" for k, v in report["packages"].items() if v))
    if report["problems"]:
        lines.append("Problems:")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("Everything the course needs is installed.")
    return "\n".join(lines)


def diagnose(frameworks=FRAMEWORKS):
    """Print the doctor's report and return it as a dict."""
    report = environment(frameworks)
    print(format_report(report))
    return report


def machine():
    """Return a one-line description of the machine, its CPU and the framework versions."""
    tf = version("tensorflow") or version("tensorflow-cpu")
    return (
        f"{platform.platform(terse=True)}, {platform.machine()}, {cpu.describe()}, "
        f"Python {platform.python_version()}, torch {version('torch')}, tensorflow {tf}, "
        f"keras {version('keras')}"
    )

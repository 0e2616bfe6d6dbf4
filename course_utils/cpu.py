"""The CPU behind a measurement: model, vector extensions, kernel libraries and threads.

float32 results differ in their last digits from CPU to CPU, because each framework picks its
kernels (and so the order of its additions) from the instructions the CPU has. This module says
which CPU a figure came from, and which knobs select other kernels on the same machine:
:data:`SELECTIONS` are the named kernel selections the course validates its stored outputs
under (``COURSE_KERNELS=avx2 python3 course.py test`` runs the whole test command under one).
"""

import os
import platform
import re
import subprocess

# Which environment variables select other CPU kernels, per library. Measured on an Intel Xeon
# with AVX-512 and AMX, torch 2.13.0+cpu, tensorflow-cpu 2.21.0, onnxruntime 1.32: each knob
# below changed at least one result's bits; the libraries marked "none" ignored all of them.
KNOBS = {
    "ATEN_CPU_CAPABILITY": "PyTorch's own vectorised kernels (softmax, element-wise ops, "
    "reductions): default, avx2, avx512",
    "MKL_ENABLE_INSTRUCTIONS": "oneMKL, PyTorch's BLAS on x86 (matmul) and its vector math "
    "(exp, tanh): AVX2, AVX512, ...",
    "ONEDNN_MAX_CPU_ISA": "oneDNN, used by PyTorch (convolutions) and TensorFlow (matmul, "
    "convolutions, even with TF_ENABLE_ONEDNN_OPTS=0): AVX2, AVX512_CORE, ...",
}
NO_KNOB = ("ONNX Runtime (MLAS picks kernels from CPUID)", "LiteRT/XNNPACK")

SELECTIONS = {
    # An AVX2 machine: most laptops before 2022, AMD Zen 2/3, many cloud hosts.
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    # AVX-512 without AMX or bf16 instructions: Skylake/Cascade Lake servers (e.g. Colab hosts).
    "avx512-core": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
    },
    # For an AVX2 machine: the libraries' AVX (2011) kernels. PyTorch's own kernels stay at
    # avx2, because ATEN_CPU_CAPABILITY=default breaks torch.compile's C++ build.
    "avx": {"ONEDNN_MAX_CPU_ISA": "AVX", "MKL_ENABLE_INSTRUCTIONS": "AVX"},
}

# Flags worth naming, in the order they are printed (Linux /proc/cpuinfo names).
X86_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
ARM_FLAGS = ("asimd", "asimdhp", "sve", "sve2", "sme", "bf16", "i8mm")
ARM_NAMES = {"asimd": "neon"}


def _cpuinfo():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _sysctl(name):
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def model():
    """Return the CPU's model name, e.g. 'Intel(R) Xeon(R) Platinum 8480+' (or the architecture)."""
    text = _cpuinfo()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
        if match:
            return match.group(1).strip()
    if platform.system() == "Darwin":
        return _sysctl("machdep.cpu.brand_string") or platform.machine()
    return platform.processor() or platform.machine()


def extensions():
    """Return the vector extensions that matter for kernels, e.g. ['avx2', 'fma', 'avx512f']."""
    text = _cpuinfo()
    match = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    if match:
        have = set(match.group(1).split())
        return [ARM_NAMES.get(f, f) for f in (*X86_FLAGS, *ARM_FLAGS) if f in have]
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        found = ["neon"]  # every Apple silicon core
        for feature, name in (("FEAT_BF16", "bf16"), ("FEAT_I8MM", "i8mm"), ("FEAT_SME", "sme")):
            if _sysctl(f"hw.optional.arm.{feature}") == "1":
                found.append(name)
        return found
    return []


def selection():
    """Return the kernel-selection variables set in this process's environment (a dict)."""
    return {k: os.environ[k] for k in KNOBS if k in os.environ}


def cross_selection(found=None):
    """Return the name of the kernel selection that differs most usefully from this CPU's own.

    An AVX-512 CPU is checked with AVX2 kernels, an AVX2 CPU with AVX kernels; on other CPUs
    (ARM, Apple silicon) none of the knobs applies and the answer is None.
    """
    found = extensions() if found is None else found
    if "avx512f" in found:
        return "avx2"
    if "avx2" in found:
        return "avx"
    return None


def torch_backends():
    """Return PyTorch's CPU kernel facts: capability, BLAS, oneDNN, threads (imports torch)."""
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    onednn = re.search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", config)
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "blas": (blas.group(1) if blas else "unknown") + (f" {mkl.group(1)}" if mkl else ""),
        "onednn": onednn.group(1) if onednn and torch.backends.mkldnn.is_available() else None,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    }


def tf_backends():
    """Return TensorFlow's CPU kernel facts: oneDNN custom ops on/off, threads (imports TF)."""
    import tensorflow as tf

    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn_ops = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # private API: may move between versions
        onednn_ops = None
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return {
        "onednn_ops": onednn_ops,  # TF_ENABLE_ONEDNN_OPTS; on by default on x86 Linux
        # Even with them off, Eigen's float32 contractions (matmul, convolutions) call oneDNN's
        # sgemm on x86: ONEDNN_MAX_CPU_ISA changes their results.
        "kernels": (
            "oneDNN for matmul, convolutions and their fusions, Eigen for the rest"
            if onednn_ops
            else "Eigen (contractions through oneDNN sgemm)"
        ),
        "threads": intra or os.cpu_count(),  # 0 means "one per core"
        "interop_threads": inter or os.cpu_count(),
    }


def onednn_bf16_blocked():
    """Return why TensorFlow's bfloat16 layers cannot run here though the CPU has bfloat16
    instructions, or None when they can.

    ``ONEDNN_MAX_CPU_ISA`` below ``AVX512_CORE_BF16`` (one of the course's kernel selections)
    takes oneDNN's bfloat16 kernels away, but TensorFlow 2.21 reads the CPU itself and still
    sends bfloat16 matmuls to oneDNN: the process crashes (measured, a segmentation fault in a
    Dense layer's training step). On a CPU that really lacks bfloat16 it works.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    has_bf16 = any(f in extensions() for f in ("avx512_bf16", "amx_bf16"))
    if not cap or cap == "ALL" or "BF16" in cap or "AMX" in cap or not has_bf16:
        return None
    return (
        f"ONEDNN_MAX_CPU_ISA={cap} hides oneDNN's bfloat16 kernels on a CPU that has bfloat16 "
        "instructions, and TensorFlow would crash here; unset it to run this cell"
    )


def speed_settings(framework):
    """Return the settings that decide a framework's speed here, as one dict (imports it).

    ``framework`` is ``"torch"`` or ``"tensorflow"``. Threads, the CPU kernel libraries, the
    float32 precision of GPU matmuls (TF32) and the compiler defaults; ``switches`` lists any
    environment variable set in this process that changes which kernels run
    (:data:`course_utils.quiet.KERNEL_SWITCHES`): the course sets none of them.
    """
    from .quiet import KERNEL_SWITCHES

    switches = {k: os.environ[k] for k in KERNEL_SWITCHES if k in os.environ}
    if framework == "torch":
        import torch

        k = torch_backends()
        return {
            "framework": "PyTorch",
            "version": torch.__version__,
            "threads": k["threads"],
            "interop_threads": k["interop_threads"],
            "onednn": bool(k["onednn"]) and torch.backends.mkldnn.enabled,
            "blas": k["blas"],
            "kernels": k["capability"],
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "tf32_gpu_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_gpu_conv": bool(torch.backends.cudnn.allow_tf32),
            "compiler": "eager; torch.compile only where called (mode='default')",
            "switches": switches,
        }
    if framework == "tensorflow":
        import tensorflow as tf

        k = tf_backends()
        jit = tf.config.optimizer.get_jit()
        # Keras 3 resolves jit_compile="auto" to False on a machine with no GPU or TPU.
        accelerators = [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
        return {
            "framework": "TensorFlow",
            "version": tf.__version__,
            "threads": k["threads"],
            "interop_threads": k["interop_threads"],
            "onednn": k["onednn_ops"],
            "blas": k["kernels"],
            "kernels": None,
            "float32_matmul_precision": None,
            "tf32_gpu_matmul": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "tf32_gpu_conv": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "compiler": (
                f"XLA auto-clustering {jit or 'off'}; tf.function(jit_compile=None); "
                "Keras compile(jit_compile='auto'): XLA for fit "
                + ("when the model allows" if accelerators else "off (no GPU or TPU)")
            ),
            "switches": switches,
        }
    raise ValueError(f"unknown framework {framework!r}: expected 'torch' or 'tensorflow'")


def format_speed_settings(settings):
    """Return :func:`speed_settings` as two short lines for a notebook."""
    s = settings
    onoff = {True: "on", False: "OFF", None: "unknown"}
    if s["framework"] == "PyTorch":
        kernels = (
            f"oneDNN {onoff[s['onednn']]}, BLAS {s['blas']}, ATen kernels {s['kernels']}; "
            f"float32 matmul precision '{s['float32_matmul_precision']}'"
        )
    else:
        kernels = f"oneDNN custom ops {onoff[s['onednn']]}, {s['blas']}"
    tf32 = (
        f"TF32 on a GPU: matmul {'on' if s['tf32_gpu_matmul'] else 'off'}, "
        f"convolutions {'on' if s['tf32_gpu_conv'] else 'off'}"
    )
    switches = ", ".join(f"{k}={v}" for k, v in s["switches"].items()) or "none set"
    return (
        f"{s['framework']} {s['version']}: threads {s['threads']} (inter-op "
        f"{s['interop_threads']}); {kernels}\n"
        f"  {tf32}; {s['compiler']}; kernel switches: {switches}"
    )


def print_speed_settings(framework):
    """Print the speed settings of ``framework`` ("torch" or "tensorflow"); return them."""
    settings = speed_settings(framework)
    print(format_speed_settings(settings))
    return settings


def describe():
    """Return a one-line CPU description: model, cores, extensions, and any kernel selection."""
    ext = extensions()
    line = f"{model()}, {os.cpu_count()} cores" + (f" ({' '.join(ext)})" if ext else "")
    chosen = selection()
    if chosen:
        line += " with " + " ".join(f"{k}={v}" for k, v in chosen.items())
    return line

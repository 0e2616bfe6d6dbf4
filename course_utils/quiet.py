"""Quiet the frameworks' log noise so that executed notebooks have stable outputs.

Quiet changes what is *printed*, never how anything *runs*: both frameworks keep their default
kernels (TensorFlow's oneDNN operations included), threads and compilers. Setting
``TF_ENABLE_ONEDNN_OPTS=0`` would also hide TensorFlow's oneDNN banner, but by switching its
oneDNN kernels off, which makes every CPU comparison with PyTorch unfair. The banner is written
to the process's stderr while TensorFlow is imported, before its C++ log level applies, so
``quiet()`` filters those lines out of that one import instead.
"""

import importlib.abc
import logging
import os
import re
import sys
import tempfile
import warnings

# Set before TensorFlow is imported: its C++ logs go straight to stderr, which nbval compares.
# Only log levels: nothing here changes a kernel, a thread count or a compiler setting.
ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO, WARNING and ERROR lines off
    "GRPC_VERBOSITY": "ERROR",
    "KMP_WARNINGS": "0",
}

# Settings that switch a kernel library off or change the kernels a framework picks. quiet()
# never sets them; a lesson that does must say so (tests/test_fair.py checks the notebooks).
KERNEL_SWITCHES = (
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_DISABLE_MKL",
    "TF_XLA_FLAGS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
)

# Lines TensorFlow writes to stderr while it is imported, before its log level applies.
IMPORT_BANNERS = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are o(n|ff)"),
    re.compile(r"^[IW]\d{4} [\d:. ]+\d+ cpu_feature_guard\.cc:\d+\] "),
)

NOISY_WARNINGS = [
    # (message regex, category) pairs that say nothing a student can act on.
    (r".*np\.find_common_type.*", DeprecationWarning),
    (r".*`tf\.lite\.Interpreter` is deprecated.*", UserWarning),
    (r".*TypedStorage is deprecated.*", UserWarning),
    (r".*IProgress not found.*", Warning),
]


def filter_banner(text):
    """Return ``text`` without TensorFlow's import banner lines (the rest kept, in order)."""
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not any(p.match(line) for p in IMPORT_BANNERS)
    ]
    return "".join(kept)


class _StderrFilter:
    """Send file descriptor 2 to a temporary file, then replay it without the banner lines."""

    def __enter__(self):
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = self._file.read().decode(errors="replace")
        self._file.close()
        rest = filter_banner(text)
        if rest:
            sys.stderr.write(rest)
            sys.stderr.flush()
        return False


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Find ``tensorflow`` with the other finders and run its import under _StderrFilter."""

    def find_spec(self, fullname, path=None, target=None):
        # Probes such as importlib.util.find_spec("tensorflow") come here too: stay in place
        # until the import itself has run (the loader takes this finder out then).
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _QuietTensorFlowImport) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _FilteredLoader(spec.loader)
                return spec
        return None


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]
        with _StderrFilter():
            self._loader.exec_module(module)

    def __getattr__(self, name):  # is_package, get_code, get_resource_reader, ...
        return getattr(self._loader, name)


def quiet():
    """Set log levels for TensorFlow, PyTorch and friends; return the environment it set.

    Call it before ``import tensorflow``: the import then runs with TensorFlow's oneDNN banner
    filtered out of stderr (anything else it writes still shows). Called after, it still
    quiets Python-level logs and says that the C++ level could not be changed any more.
    Nothing it does changes which kernels either framework runs.
    """
    late = "tensorflow" in sys.modules
    os.environ.update(ENV)
    for pattern, category in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    for name in ("tensorflow", "absl", "h5py", "jax", "torch._dynamo", "torch._inductor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if late:
        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
        warnings.warn(
            "course_utils.quiet() ran after TensorFlow was imported: its C++ log level is "
            "already fixed. Call quiet() before `import tensorflow`.",
            stacklevel=2,
        )
    elif not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    return dict(ENV)

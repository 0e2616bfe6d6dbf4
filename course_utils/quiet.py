"""Quiet the frameworks' log noise so that executed notebooks have stable outputs."""

import logging
import os
import sys
import warnings

# Set before TensorFlow is imported: its C++ logs go straight to stderr, which nbval compares.
ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO, WARNING and ERROR lines off
    "TF_ENABLE_ONEDNN_OPTS": "0",  # no oneDNN banner, and bit-for-bit repeatable CPU results
    "GRPC_VERBOSITY": "ERROR",
    "KMP_WARNINGS": "0",
}

NOISY_WARNINGS = [
    # (message regex, category) pairs that say nothing a student can act on.
    (r".*np\.find_common_type.*", DeprecationWarning),
    (r".*`tf\.lite\.Interpreter` is deprecated.*", UserWarning),
    (r".*TypedStorage is deprecated.*", UserWarning),
    (r".*IProgress not found.*", Warning),
]


def quiet():
    """Set log levels for TensorFlow, PyTorch and friends; return the environment it set.

    Call it before ``import tensorflow``. Called after, it still quiets Python-level logs
    and says that the C++ level could not be changed any more.
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
    return dict(ENV)

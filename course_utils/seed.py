"""Seed Python, NumPy and whichever frameworks are imported, from one call."""

import os
import random
import sys

import numpy as np


def seed_everything(seed=0, *, deterministic=False):
    """Seed Python, NumPy, and PyTorch / TensorFlow if they are imported; return what was seeded.

    Frameworks that are not imported yet are left alone (importing TensorFlow costs seconds),
    so call it after your framework imports. ``deterministic=True`` also asks each framework
    for deterministic kernels (slower; some ops then raise instead of running).
    """
    seeded = ["python", "numpy"]
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
        if deterministic:
            torch.use_deterministic_algorithms(True)
        seeded.append("torch")
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        seeded.append("tensorflow")
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
        seeded.append("keras")
    return seeded

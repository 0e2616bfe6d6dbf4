"""Checkers for 00_setup: describing a tensor, and counting what a data pipeline yields."""

from ..checks import Mismatch, exercise, expect_equal

DESCRIBE_HINT = (
    "Use the tensor's .shape, .dtype and .device; turn each into plain Python "
    "(a tuple of ints, a dtype name such as 'float32', a device kind such as 'cpu')."
)


def _check_describe(describe, make):
    """Call the student's describe() on tensors made by ``make(shape, dtype)``."""
    for shape, dtype in (((2, 3), "float32"), ((4,), "int64"), ((), "float64")):
        tensor = make(shape, dtype)
        got = describe(tensor)
        if not isinstance(got, dict):
            raise Mismatch("describe() should return a dict", "a dict", type(got).__name__)
        expected = {"shape": shape, "dtype": dtype, "device": "cpu"}
        for key, want in expected.items():
            if key not in got:
                raise Mismatch(f"the dict has no key {key!r}", sorted(expected), sorted(got))
            expect_equal(
                f"describe(tensor)[{key!r}] for a {dtype} tensor of shape {shape}",
                got[key],
                want,
                hint=DESCRIBE_HINT,
            )
    return "shape, dtype and device all come back as plain Python values."


@exercise("00_setup.pytorch.describe", "Describe a tensor", hint=DESCRIBE_HINT)
def describe_torch(describe):
    import torch

    return _check_describe(describe, lambda s, d: torch.zeros(s, dtype=getattr(torch, d)))


@exercise("00_setup.tensorflow.describe", "Describe a tensor", hint=DESCRIBE_HINT)
def describe_tf(describe):
    import tensorflow as tf

    with tf.device("/CPU:0"):
        return _check_describe(describe, lambda s, d: tf.zeros(s, dtype=getattr(tf, d)))


COUNT_HINT = (
    "Loop over the pipeline batch by batch and add up the batch sizes (len(y) or y.shape[0])."
)


def _check_count(count_examples, make):
    for n, batch in ((100, 32), (64, 64), (7, 3)):
        pipeline = make(n, batch)
        expect_equal(
            f"count_examples(pipeline of {n} examples in batches of {batch})",
            count_examples(pipeline),
            n,
            hint=COUNT_HINT,
        )
    return "every example counted once, including the last, smaller batch."


@exercise("00_setup.pytorch.count_examples", "Count what a DataLoader yields", hint=COUNT_HINT)
def count_torch(count_examples):
    import numpy as np

    from ..data import torch_loader

    def make(n, batch):
        return torch_loader(np.zeros((n, 4), np.float32), np.zeros(n, np.int64), batch_size=batch)

    return _check_count(count_examples, make)


@exercise(
    "00_setup.tensorflow.count_examples", "Count what a tf.data.Dataset yields", hint=COUNT_HINT
)
def count_tf(count_examples):
    import numpy as np

    from ..data import tf_dataset

    def make(n, batch):
        return tf_dataset(np.zeros((n, 4), np.float32), np.zeros(n, np.int64), batch_size=batch)

    return _check_count(count_examples, make)

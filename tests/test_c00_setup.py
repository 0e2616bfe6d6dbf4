"""00_setup: both tracks agree on what they recorded; the checkers judge answers correctly."""

import numpy as np
import pytest
import torch

import course_utils as cu
from conftest import ROOT
from course_utils.records import by_name, read_records


def stored(track):
    return by_name(read_records(ROOT / "notebooks" / "00_setup" / f"{track}.ipynb"))


def test_both_tracks_computed_the_same_things():
    pt, tf = stored("pytorch"), stored("tensorflow")
    assert pt["first_matmul"] == tf["first_matmul"] == [[3.0, 3.0], [12.0, 12.0]]
    assert pt["train_size"] == tf["train_size"] == 1257
    assert pt["first_batch_labels"] == tf["first_batch_labels"]  # same split, same batch order
    assert pt["doctor_problems"] == tf["doctor_problems"] == 0
    assert pt["matmul_256_median_s"] > 0 and tf["matmul_256_median_s"] > 0


def test_describe_checker_torch():
    good = lambda t: {"shape": tuple(t.shape), "dtype": str(t.dtype)[6:], "device": t.device.type}  # noqa: E731
    assert cu.check("00_setup.pytorch.describe", good).passed
    wrong = cu.check(
        "00_setup.pytorch.describe",
        lambda t: {"shape": t.shape, "dtype": str(t.dtype), "device": "cpu"},
    )
    assert wrong.status == "wrong" and "expected: 'float32'" in wrong.message
    assert "torch.float32" in wrong.message
    assert cu.check("00_setup.pytorch.describe", lambda t: [1]).status == "wrong"


def test_describe_checker_tensorflow():
    good = lambda t: {"shape": tuple(t.shape), "dtype": t.dtype.name, "device": "cpu"}  # noqa: E731
    assert cu.check("00_setup.tensorflow.describe", good).passed


@pytest.mark.parametrize("track", ["pytorch", "tensorflow"])
def test_count_examples_checker(track):
    def good(pipeline):
        return sum(int(y.shape[0]) for _, y in pipeline)

    def first_batch_only(pipeline):
        return int(next(iter(pipeline))[1].shape[0])

    def stub(pipeline):
        raise NotImplementedError

    assert cu.check(f"00_setup.{track}.count_examples", good).passed
    wrong = cu.check(f"00_setup.{track}.count_examples", first_batch_only)
    assert (
        wrong.status == "wrong"
        and "expected: 100" in wrong.message
        and "got:      32" in wrong.message
    )
    assert cu.check(f"00_setup.{track}.count_examples", stub).status == "not solved"


def test_same_matmul_directly_in_both_frameworks():
    import tensorflow as tf

    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    W = np.ones((3, 2), np.float32)
    assert np.array_equal(
        (torch.from_numpy(X) @ torch.from_numpy(W)).numpy(),
        (tf.constant(X) @ tf.constant(W)).numpy(),
    )

"""Exercise 1 of 07_distributed: shard a data set across workers, in PyTorch (a function that
returns each rank's indices) and in tf.data (a function that shards a data set).
"""

import numpy as np

from ...checks import Mismatch, exercise
from .common import _call

CASES = ((10, 2), (10, 3), (7, 4), (12, 4), (3, 4))  # (data set size, number of workers)


# ---------------------------------------------------------------- Exercise 1: sharding

SHARD_HINT = (
    "Every worker must get the same number of examples (or the ones with more would wait "
    "forever in the gradient all-reduce of their last step), together they must cover the "
    "data, and they must not overlap. Either pad the data to a multiple of world_size by "
    "repeating its first examples (what DistributedSampler does), or drop the last "
    "n % world_size examples; then take every world_size-th example starting at rank."
)


def _judge_shards(shards, n, world_size):
    """Check a list of per-rank shards (lists of example indices) of a data set of size ``n``.

    Returns "even" (no remainder), "padded" or "dropped" (how the remainder was handled), or
    raises Mismatch.
    """
    where = f"{n} examples on {world_size} workers"
    for rank, shard in enumerate(shards):
        bad = [i for i in shard if not (isinstance(i, int | np.integer) and 0 <= i < n)]
        if bad:
            raise Mismatch(
                f"{where}: rank {rank} got values that are not example indices",
                f"integers from 0 to {n - 1}",
                repr(bad[:5]),
                SHARD_HINT,
            )
    sizes = [len(s) for s in shards]
    if len(set(sizes)) != 1:
        raise Mismatch(
            f"{where}: the workers got different numbers of examples",
            "the same number on every rank",
            ", ".join(f"rank {r}: {k}" for r, k in enumerate(sizes)),
            SHARD_HINT,
        )
    every = [int(i) for s in shards for i in s]
    counts = np.bincount(every, minlength=n) if every else np.zeros(n, int)
    missing = [i for i in range(n) if counts[i] == 0]
    padded_total = -(-n // world_size) * world_size
    if not missing and len(every) == padded_total:
        return "even" if n % world_size == 0 else "padded"
    if not missing and len(every) > padded_total:
        twice = [i for i in range(n) if counts[i] > 1]
        raise Mismatch(
            f"{where}: the shards overlap",
            f"{padded_total} indices in all (n padded to a multiple of {world_size})",
            f"{len(every)} indices, e.g. index {twice[0]} {int(counts[twice[0]])} times",
            SHARD_HINT,
        )
    if (
        len(missing) <= world_size - 1
        and counts.max(initial=0) <= 1
        and len(every) == n - n % world_size
    ):
        return "dropped"
    raise Mismatch(
        f"{where}: some examples reach no worker",
        "every example on some rank (or only the last n % world_size dropped)",
        f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}",
        SHARD_HINT,
    )


REMAINDER = {
    "padded": "padded by repeating the first examples",
    "dropped": "the last n % world_size examples dropped",
}


def _shard_message(kinds, same_as):
    uneven = sorted({kind for kind in kinds.values() if kind != "even"})
    return (
        f"equal, non-overlapping shares for every worker, in {len(kinds)} cases"
        + (f" (uneven sizes: {' / '.join(REMAINDER[k] for k in uneven)})" if uneven else "")
        + (f"; the same as {same_as}" if same_as else "")
        + "."
    )


@exercise(
    "07_distributed.pytorch.shard_indices",
    "Shard a data set across workers (PyTorch)",
    hint=SHARD_HINT,
)
def shard_indices_torch(shard_indices):
    from torch.utils.data.distributed import DistributedSampler

    kinds, same = {}, True
    for n, world_size in CASES:
        shards = []
        for rank in range(world_size):
            got = _call(shard_indices, n, rank, world_size, what="shard_indices")
            try:
                shards.append([int(i) for i in got])
            except TypeError:
                raise Mismatch(
                    f"shard_indices({n}, {rank}, {world_size}) should return a list of indices",
                    "a list of ints",
                    type(got).__name__,
                    SHARD_HINT,
                ) from None
        kinds[(n, world_size)] = _judge_shards(shards, n, world_size)
        reference = [
            list(DistributedSampler(range(n), world_size, r, shuffle=False))
            for r in range(world_size)
        ]
        same = same and shards == reference
    return _shard_message(kinds, "DistributedSampler(shuffle=False)" if same else None)


@exercise(
    "07_distributed.tensorflow.shard",
    "Shard a data set across workers (TensorFlow)",
    hint=SHARD_HINT.replace("DistributedSampler does", "DistributedSampler does in PyTorch")
    + " In tf.data: dataset.take(...) then dataset.shard(num_shards=world_size, index=rank).",
)
def shard_tf(shard):
    import tensorflow as tf

    kinds = {}
    for n, world_size in CASES:
        shards = []
        for rank in range(world_size):
            dataset = tf.data.Dataset.range(n)
            got = _call(shard, dataset, rank, world_size, what="shard")
            if not isinstance(got, tf.data.Dataset):
                raise Mismatch(
                    f"shard(dataset, {rank}, {world_size}) should return a tf.data.Dataset",
                    "a tf.data.Dataset",
                    type(got).__name__,
                    "Call methods of the data set (they return a new data set).",
                )
            limit = 2 * n + world_size + 1  # an endless data set stops here
            values = _call(
                lambda d=got, k=limit: [int(v) for v in d.take(k).as_numpy_iterator()],
                what="iterating over your data set",
            )
            if len(values) >= limit:
                raise Mismatch(
                    f"{n} examples on {world_size} workers: rank {rank}'s data set does not end",
                    f"at most {-(-n // world_size)} examples",
                    f"more than {limit - 1}",
                    "Don't .repeat() the data set here.",
                )
            shards.append(values)
        kinds[(n, world_size)] = _judge_shards(shards, n, world_size)
    return _shard_message(kinds, None)

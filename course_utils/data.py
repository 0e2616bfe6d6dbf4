"""The course's default data set: scikit-learn's 8x8 digits, shipped inside the package.

No download ever happens. The same NumPy split feeds a PyTorch ``DataLoader`` and a
``tf.data.Dataset``; with ``order="numpy"`` both yield the very same batches in the same order.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Splits:
    """Train/validation/test arrays. X is float32 in [0, 1]; y is int64 class labels 0..9."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 10
    image_shape: tuple = (8, 8)

    def sizes(self):
        """Return ``{"train": n, "val": n, "test": n}``."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def load_digits(seed=0, val_fraction=0.15, test_fraction=0.15, flatten=True):
    """Return the digits data set as stratified :class:`Splits` (1797 images of 8x8 pixels).

    ``flatten=False`` keeps images as ``(n, 8, 8, 1)`` (channels last, as Keras expects);
    PyTorch convolutions want ``(n, 1, 8, 8)``: ``X.transpose(0, 3, 1, 2)``.

    In a checkout, the split is kept in ``build/cache`` (one small file per seed, fractions and
    scikit-learn version), so later processes read it back instead of importing scikit-learn:
    about a second of CPU for each PyTorch process (TensorFlow's import brings scikit-learn in
    anyway, through Keras). The arrays are the very same.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
    arrays = _cached_split(seed, val_fraction, test_fraction)
    if not flatten:
        arrays[0::2] = [a.reshape(-1, 8, 8, 1) for a in arrays[0::2]]
    return Splits(*arrays)


_NAMES = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def _split(seed, val_fraction, test_fraction):
    """The stratified split itself, with scikit-learn: ``[X_train, y_train, ..., y_test]``."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    digits = sk_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest,
        y_rest,
        test_size=val_fraction / (1 - test_fraction),
        random_state=seed,
        stratify=y_rest,
    )
    return [X_train, y_train, X_val, y_val, X_test, y_test]


def cache_file(seed=0, val_fraction=0.15, test_fraction=0.15):
    """Return the file that keeps this split (``build/cache/digits-<key>.npz`` in the
    checkout), or None outside a checkout or where scikit-learn is not installed."""
    import hashlib
    import json
    from importlib.metadata import PackageNotFoundError, version

    from .paths import find_root

    root = find_root()
    if root is None:
        return None
    try:
        sklearn_version = version("scikit-learn")
    except PackageNotFoundError:
        return None
    key = json.dumps([1, int(seed), float(val_fraction), float(test_fraction), sklearn_version])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return root / "build" / "cache" / f"digits-{digest}.npz"


def _cached_split(seed, val_fraction, test_fraction):
    import os
    import tempfile

    path = cache_file(seed, val_fraction, test_fraction)
    if path is not None and path.is_file():
        try:
            with np.load(path) as saved:
                return [saved[name] for name in _NAMES]
        except Exception:  # noqa: BLE001  (truncated, not a zip, a name missing: split again)
            pass
    arrays = _split(seed, val_fraction, test_fraction)
    if path is None:
        return arrays
    partial = None
    try:  # written whole under another name, then renamed: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **dict(zip(_NAMES, arrays, strict=True)))
        os.replace(partial, path)
    except OSError:  # a read-only checkout, a full disk: no cache, the split is still right
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
    return arrays


def epoch_order(n, seed, epoch):
    """Return the permutation of ``range(n)`` used for ``epoch`` (the same in both frameworks)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class _EpochPermutationSampler:
    """A PyTorch sampler that yields :func:`epoch_order` for epoch 0, 1, 2, ... in turn."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self):
        return self.n


def torch_loader(X, y, batch_size=64, shuffle=True, seed=0, order="framework"):
    """Return a ``torch.utils.data.DataLoader`` over the arrays ``X``, ``y``.

    ``order="framework"`` shuffles with a seeded ``torch.Generator``; ``order="numpy"`` uses
    :func:`epoch_order`, so the batches match :func:`tf_dataset` with the same arguments.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(np.asarray(X)), torch.from_numpy(np.asarray(y)))
    if not shuffle:
        return DataLoader(dataset, batch_size=batch_size, shuffle=False)
    if order == "numpy":
        return DataLoader(
            dataset, batch_size=batch_size, sampler=_EpochPermutationSampler(len(y), seed)
        )
    if order != "framework":
        raise ValueError("order must be 'framework' or 'numpy'")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def tf_dataset(X, y, batch_size=64, shuffle=True, seed=0, order="framework"):
    """Return a batched, prefetched ``tf.data.Dataset`` over the arrays ``X``, ``y``.

    Every pass over the dataset (every Keras epoch) is reshuffled. ``order="numpy"`` uses
    :func:`epoch_order`, so the batches match :func:`torch_loader` with the same arguments.
    """
    import itertools

    import tensorflow as tf

    X, y = np.asarray(X), np.asarray(y)
    if not shuffle:
        ds = tf.data.Dataset.from_tensor_slices((X, y)).batch(batch_size)
    elif order == "numpy":
        epochs = itertools.count()
        n = len(y)

        def batches_of_indices():
            order_ = epoch_order(n, seed, next(epochs))
            for start in range(0, n, batch_size):
                yield order_[start : start + batch_size]

        X_t, y_t = tf.constant(X), tf.constant(y)
        ds = tf.data.Dataset.from_generator(
            batches_of_indices, output_signature=tf.TensorSpec([None], tf.int64)
        ).map(lambda idx: (tf.gather(X_t, idx), tf.gather(y_t, idx)))
    elif order == "framework":
        ds = (
            tf.data.Dataset.from_tensor_slices((X, y))
            .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
    else:
        raise ValueError("order must be 'framework' or 'numpy'")
    if shuffle and order == "numpy":  # a generator has no known length; Keras' fit wants one
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(y) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)

"""Layout traps that break real ports between PyTorch and Keras, as functions that make the
port naively or correctly and return the difference from the original (used by the lesson's
tests; the notebooks write the same ports out in full), and the reading of the round-trip
timings: a fixed cost plus a part that grows with the size."""

import math

import numpy as np

# ---------------------------------------------------------------- timings


def describe_growth(rows):
    """Read :func:`~course_utils.interop.time_round_trips` rows, route by route.

    Returns ``{route: {"fixed_s", "dominated_until_bytes", "slope"}}``: ``fixed_s`` is the
    median at the smallest size (the fixed cost of a crossing); ``dominated_until_bytes`` the
    largest size whose median stays under twice that (where the part that grows with the size
    is still smaller than the fixed part), ``None`` if none beyond the first; ``slope`` the
    least-squares slope of log(time) against log(bytes) over the three largest sizes (0:
    constant, 1: in proportion to the size).
    """
    found = {}
    for route in dict.fromkeys(r["route"] for r in rows):
        mine = sorted((r for r in rows if r["route"] == route), key=lambda r: r["bytes"])
        fixed = mine[0]["median_s"]
        under = [r["bytes"] for r in mine if r["median_s"] < 2 * fixed]
        top = mine[-3:]  # least squares over the three largest sizes
        xs = [math.log(r["bytes"]) for r in top]
        ys = [math.log(r["median_s"]) for r in top]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        found[route] = {
            "fixed_s": fixed,
            "dominated_until_bytes": max(under) if len(under) > 1 else None,
            "slope": slope,
        }
    return found


# ---------------------------------------------------------------- BatchNorm


def batchnorm_state(seed=0):
    """The four arrays of a BatchNorm over the 64 digit pixels that has learned their statistics:
    ``[scale, shift, running mean, running variance]``, float32 (the scale and shift drawn in
    NumPy from ``seed``, the statistics those of the training images)."""
    from ..data import load_digits

    X = load_digits(seed=seed).X_train
    rng = np.random.default_rng(seed)
    return [
        (1 + 0.1 * rng.standard_normal(64)).astype(np.float32),
        (0.1 * rng.standard_normal(64)).astype(np.float32),
        X.mean(0).astype(np.float32),
        X.var(0).astype(np.float32),
    ]


def conv_weights(seed=0):
    """``(kernel, bias)`` of a 3x3 convolution from 1 to 8 channels, drawn in NumPy from ``seed``;
    the kernel in Keras's HWIO layout."""
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((3, 3, 1, 8)).astype(np.float32)
    return kernel, rng.standard_normal(8).astype(np.float32)


def _bn_data(seed=0):
    from ..data import load_digits

    splits = load_digits(seed=seed)
    batches = splits.X_train[: 10 * 32].reshape(10, 32, 64)
    return batchnorm_state(seed), batches, splits.X_test


def _torch_bn(arrays, **kw):
    import torch

    bn = torch.nn.BatchNorm1d(64, **kw)
    with torch.no_grad():
        for p, a in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), arrays, strict=True):
            p.copy_(torch.from_numpy(a))
    return bn


def _keras_bn(arrays, **kw):
    import keras

    bn = keras.layers.BatchNormalization(**kw)
    bn.build((None, 64))
    bn.set_weights(arrays)
    return bn


def _run(bn, X, training):
    import keras

    if hasattr(bn, "running_mean"):  # PyTorch
        import torch

        bn.train(training)
        with torch.no_grad():
            return bn(torch.from_numpy(X)).numpy()
    return keras.ops.convert_to_numpy(bn(X, training=training))


def _moving_mean(bn):
    import keras

    if hasattr(bn, "running_mean"):
        return bn.running_mean.numpy().copy()
    return keras.ops.convert_to_numpy(bn.moving_mean)


def batchnorm_port(direction, fix, seed=0):
    """Port a trained BatchNormalization ``"keras->torch"`` or ``"torch->keras"``, with the
    target's defaults (``fix=False``) or with epsilon and momentum converted (``fix=True``).
    Return ``{"output": max |difference| in inference, "running_mean": max |difference| of the
    running means after 10 more training steps on the same batches}``."""
    arrays, batches, X_test = _bn_data(seed)
    if direction == "keras->torch":
        source = _keras_bn(arrays)  # Keras's defaults: momentum 0.99, epsilon 1e-3
        target = _torch_bn(arrays, **({"eps": 1e-3, "momentum": 0.01} if fix else {}))
    elif direction == "torch->keras":
        source = _torch_bn(arrays)  # PyTorch's defaults: momentum 0.1, eps 1e-5
        target = _keras_bn(arrays, **({"epsilon": 1e-5, "momentum": 0.9} if fix else {}))
    else:
        raise ValueError(direction)
    output = np.abs(_run(target, X_test, False) - _run(source, X_test, False)).max()
    for xb in batches:
        _run(source, xb, True)
        _run(target, xb, True)
    mean = np.abs(_moving_mean(target) - _moving_mean(source)).max()
    return {"output": float(output), "running_mean": float(mean)}


# ---------------------------------------------------------------- stride-2 'same' padding


def strided_same_port(direction, fix, seed=0):
    """Port a 3x3 stride-2 convolution ``"keras->torch"`` (Keras ``padding="same"``) or
    ``"torch->keras"`` (PyTorch ``padding=1``) on the 8x8 digits, naively (``fix=False``: the
    other framework's look-alike padding) or correctly (explicit asymmetric or symmetric zero
    padding, then no padding); return the max |difference| of the outputs."""
    import keras
    import torch
    import torch.nn.functional as F

    from ..data import load_digits

    kernel, bias = conv_weights(seed)  # HWIO
    X = load_digits(seed=seed).X_test[:32].reshape(-1, 8, 8, 1)
    x_t = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))

    def torch_conv(padding):
        conv = torch.nn.Conv2d(1, 8, 3, stride=2, padding=padding)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.from_numpy(bias))
        return conv

    def keras_conv(padding, pad=None):
        layers = [keras.Input((8, 8, 1))]
        if pad is not None:
            layers.append(keras.layers.ZeroPadding2D(pad))
        conv = keras.layers.Conv2D(8, 3, strides=2, padding=padding)
        model = keras.Sequential([*layers, conv])
        conv.set_weights([kernel, bias])
        return lambda x: keras.ops.convert_to_numpy(model(x))

    with torch.no_grad():
        if direction == "keras->torch":
            source = keras_conv("same")(X)
            if fix:
                out = torch_conv(0)(F.pad(x_t, (0, 1, 0, 1)))  # TF pads 0 before, 1 after
            else:
                out = torch_conv(1)(x_t)
            target = out.numpy().transpose(0, 2, 3, 1)
        elif direction == "torch->keras":
            source = torch_conv(1)(x_t).numpy().transpose(0, 2, 3, 1)
            target = keras_conv("valid", 1)(X) if fix else keras_conv("same")(X)
        else:
            raise ValueError(direction)
    return float(np.abs(target - source).max())

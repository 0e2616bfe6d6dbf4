"""Checkers for 08_interop: crossing without copying, a CNN's weights, an optimizer's state.

Every wrong answer these checkers name is wrong by construction, on any CPU: a copy has another
address, a scrambled layout moves whole values (the inputs are random, so no two coincide),
and a forgotten sign or scale changes a value by a factor of -1 or 1/lr.
"""

import numpy as np

from .. import interop
from ..checks import Mismatch, exercise, expect_equal

# ---------------------------------------------------------------- Exercise 1: cross without copying

TO_TORCH_HINT = (
    "torch.from_dlpack(x) views a TensorFlow tensor's memory without copying. A tf.Variable has "
    "no __dlpack__: read it with x.value(), and clone() that view, because a view of a "
    "variable's buffer lets PyTorch write into the variable (and goes stale when TensorFlow "
    "assigns to it)."
)
TO_TF_HINT = (
    "tf.experimental.dlpack.from_dlpack takes a capsule: torch.utils.dlpack.to_dlpack(t) or "
    "t.__dlpack__(). __dlpack__ refuses a tensor that requires grad (use t.detach(), which "
    "shares memory), and TensorFlow accepts only row-major memory (use t.contiguous(), which "
    "copies only when the tensor is not contiguous already)."
)


def _call(fn, value, what, hint):
    """Call the student's ``fn(value)``; turn the frameworks' refusals into a Mismatch."""
    try:
        return fn(value)
    except (NotImplementedError, Mismatch):
        raise
    except Exception as err:  # a framework refused the crossing: say which case, and why
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise Mismatch(
            f"your function raised on {what}",
            "a tensor with the same values",
            f"{type(err).__name__}: {first[:160]}",
            hint,
        ) from None


@exercise(
    "08_interop.pytorch.to_torch",
    "Take a TensorFlow tensor or variable into PyTorch without copying what need not be copied",
    hint=TO_TORCH_HINT,
)
def to_torch_check(to_torch):
    import tensorflow as tf
    import torch

    for what, x in (
        ("a float32 tf.Tensor", tf.reshape(tf.range(6.0), [2, 3])),
        ("an int64 tf.Tensor", tf.constant(np.arange(5, dtype=np.int64))),
    ):
        got = _call(to_torch, x, what, TO_TORCH_HINT)
        if not isinstance(got, torch.Tensor):
            raise Mismatch(
                f"to_torch({what}) should return a torch.Tensor",
                "torch.Tensor",
                type(got).__name__,
                TO_TORCH_HINT,
            )
        expect_equal(f"values of to_torch({what})", got.tolist(), x.numpy().tolist())
        if not interop.shares_memory(got, x):
            raise Mismatch(
                f"to_torch({what}) copied the tensor",
                "a view of TensorFlow's memory (the same address)",
                "a copy at another address",
                "torch.from_dlpack(x) shares the memory; x.numpy() and torch.tensor(...) copy.",
            )
    variable = tf.Variable([1.0, 2.0, 3.0])
    got = _call(to_torch, variable, "a tf.Variable", TO_TORCH_HINT)
    if not isinstance(got, torch.Tensor):
        raise Mismatch(
            "to_torch(a tf.Variable) should return a torch.Tensor",
            "torch.Tensor",
            type(got).__name__,
            TO_TORCH_HINT,
        )
    expect_equal("values of to_torch(a tf.Variable)", got.tolist(), [1.0, 2.0, 3.0])
    got[0] = 100.0  # PyTorch writes into what it received
    if variable.numpy()[0] != 1.0:
        raise Mismatch(
            "writing into the tensor to_torch returned for a tf.Variable changed the variable",
            "an independent copy: the variable still reads [1.0, 2.0, 3.0]",
            f"the variable now reads {variable.numpy().tolist()}",
            "torch.from_dlpack(v.value()) is a view of the variable's buffer: .clone() it.",
        )
    return "tensors cross without a copy, and a variable crosses as a copy PyTorch may write to."


@exercise(
    "08_interop.tensorflow.to_tensorflow",
    "Take a PyTorch tensor into TensorFlow, copying only when TensorFlow needs it",
    hint=TO_TF_HINT,
)
def to_tensorflow_check(to_tensorflow):
    import tensorflow as tf
    import torch

    cases = (
        ("a contiguous float32 tensor", torch.arange(6.0).reshape(2, 3), True),
        ("a tensor that requires grad", torch.ones(4, requires_grad=True), True),
        ("a transposed (non-contiguous) tensor", torch.arange(6.0).reshape(2, 3).T, False),
    )
    for what, t, must_share in cases:
        got = _call(to_tensorflow, t, what, TO_TF_HINT)
        if not isinstance(got, tf.Tensor) or isinstance(got, tf.Variable):
            raise Mismatch(
                f"to_tensorflow({what}) should return a tf.Tensor",
                "tf.Tensor",
                type(got).__name__,
                TO_TF_HINT,
            )
        expect_equal(f"values of to_tensorflow({what})", got.numpy().tolist(), t.detach().tolist())
        if must_share and not interop.shares_memory(got, t):
            raise Mismatch(
                f"to_tensorflow({what}) copied the tensor",
                "a view of PyTorch's memory (the same address)",
                "a copy at another address",
                "A DLPack capsule shares the memory; t.numpy() followed by tf.constant copies. "
                "t.detach() shares memory too.",
            )
    return "contiguous tensors cross without a copy; a transposed one is copied once, as it must."


# ---------------------------------------------------------------- Exercise 2: a CNN's weights

WEIGHTS_HINT_TORCH = (
    "conv kernels: HWIO -> OIHW is kernel.transpose(3, 2, 0, 1). The dense layer: first put its "
    "input rows from Keras's (H, W, C) flatten order into PyTorch's (C, H, W) order "
    "(kernel.reshape(2, 2, 16, 10).transpose(2, 0, 1, 3).reshape(64, 10)), then transpose "
    "(in, out) -> (out, in). Biases do not change."
)
WEIGHTS_HINT_TF = (
    "conv weights: OIHW -> HWIO is weight.transpose(2, 3, 1, 0). The dense layer: transpose "
    "(out, in) -> (in, out), then put its input rows from PyTorch's (C, H, W) flatten order into "
    "Keras's (H, W, C) order (kernel.reshape(16, 2, 2, 10).transpose(1, 2, 0, 3).reshape(64, 10)). "
    "Biases do not change."
)
TORCH_NAMES = [f"{n}.{p}" for n in interop.CNN_NAMES for p in ("weight", "bias")]
KERAS_NAMES = [f"{n}/{p}" for n in interop.CNN_NAMES for p in ("kernel", "bias")]


def _random_cnn_weights(seed):
    """Random CNN weights in the Keras layout, ``{"conv1/kernel": ...}``: no two values equal."""
    from ..training import CNN_SPEC, init_weights

    rng = np.random.default_rng(seed)
    layers = init_weights(CNN_SPEC, seed=seed)
    for layer in layers:  # random biases too, so that a mixed-up bias is seen
        layer.bias = rng.standard_normal(layer.bias.shape).astype(np.float32)
    arrays = {}
    for name, layer in zip(interop.CNN_NAMES, layers, strict=True):
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = layer.kernel, layer.bias
    return arrays


def _as_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _compare_arrays(got, want, names, label, hint, diagnose):
    """Compare two ``{name: array}`` dicts exactly (a layout change moves values, never rounds them)."""
    if not isinstance(got, dict):
        raise Mismatch(f"{label} should return a dict", "dict", type(got).__name__, hint)
    expect_equal(f"the names {label} returned", sorted(got), sorted(names), hint)
    for name in names:
        value = _as_numpy(got[name])
        if value.shape != want[name].shape:
            raise Mismatch(f"shape of {name!r}", want[name].shape, value.shape, hint)
        if not np.array_equal(value, want[name]):
            raise Mismatch(
                f"the values of {name!r} are in the wrong places",
                "the same numbers, moved to the other layout",
                diagnose(name, value),
                hint,
            )


@exercise(
    "08_interop.pytorch.state_dict_from_keras",
    "Load a Keras CNN's weights into the PyTorch CNN",
    hint=WEIGHTS_HINT_TORCH,
)
def state_dict_from_keras_check(state_dict_from_keras):
    import torch

    arrays = _random_cnn_weights(seed=11)
    want = interop.state_dict_from_layers(interop.layers_from_keras_arrays(arrays))
    got = state_dict_from_keras({k: v.copy() for k, v in arrays.items()})

    def diagnose(name, value):
        if name == "out.weight" and np.array_equal(value, arrays["out/kernel"].T):
            return "the dense kernel transposed, but its rows still in Keras's (H, W, C) order"
        if name.endswith(".weight") and np.array_equal(
            value, arrays[name.replace(".weight", "/kernel")].reshape(value.shape)
        ):
            return "the kernel reshaped to the new shape: reshape keeps the old order of values"
        return "other places"

    _compare_arrays(got, want, TORCH_NAMES, "state_dict_from_keras", WEIGHTS_HINT_TORCH, diagnose)
    model = interop.torch_cnn()
    model.load_state_dict({k: torch.as_tensor(_as_numpy(v)) for k, v in got.items()})
    return "every weight is where PyTorch expects it, and the CNN loads them."


@exercise(
    "08_interop.tensorflow.keras_arrays_from_state_dict",
    "Load a PyTorch CNN's weights into the Keras CNN",
    hint=WEIGHTS_HINT_TF,
)
def keras_arrays_from_state_dict_check(keras_arrays_from_state_dict):
    arrays = _random_cnn_weights(seed=12)
    state = interop.state_dict_from_layers(interop.layers_from_keras_arrays(arrays))
    got = keras_arrays_from_state_dict({k: v.copy() for k, v in state.items()})

    def diagnose(name, value):
        if name == "out/kernel" and np.array_equal(value, state["out.weight"].T):
            return "the dense weight transposed, but its rows still in PyTorch's (C, H, W) order"
        if name.endswith("/kernel") and np.array_equal(
            value, state[name.replace("/kernel", ".weight")].reshape(value.shape)
        ):
            return "the weight reshaped to the new shape: reshape keeps the old order of values"
        return "other places"

    _compare_arrays(
        got, arrays, KERAS_NAMES, "keras_arrays_from_state_dict", WEIGHTS_HINT_TF, diagnose
    )
    return "every weight is where Keras expects it."


# ---------------------------------------------------------------- Exercise 3: optimizer state

MOMENTUM_HINT_TORCH = (
    "Keras keeps m = momentum*m - lr*g and adds m; PyTorch keeps b = momentum*b + g and "
    "subtracts lr*b. So b = -m / lr, and b lives in PyTorch's layout: convert it like the "
    "weights (your state_dict_from_keras does exactly that)."
)
MOMENTUM_HINT_TF = (
    "PyTorch keeps b = momentum*b + g and subtracts lr*b; Keras keeps m = momentum*m - lr*g "
    "and adds m. So m = -lr * b, and m lives in the Keras layout: convert it like the weights "
    "(your keras_arrays_from_state_dict does exactly that)."
)
LR = 0.05


def _check_momentum(got, want, names, label, hint, source):
    """Compare momentum dicts within float32 rounding; say whether the layout or the scale is off."""
    if not isinstance(got, dict):
        raise Mismatch(f"{label} should return a dict", "dict", type(got).__name__, hint)
    expect_equal(f"the names {label} returned", sorted(got), sorted(names), hint)
    for name in names:
        value = _as_numpy(got[name]).astype(np.float64)
        expected = want[name].astype(np.float64)
        if value.shape != expected.shape:
            raise Mismatch(f"shape of {name!r}", expected.shape, value.shape, hint)
        if np.allclose(value, expected, rtol=1e-5, atol=1e-7):
            continue
        ratio = float(np.median(value[expected != 0] / expected[expected != 0]))
        if np.allclose(value, ratio * expected, rtol=1e-4, atol=1e-7):
            why = f"the right places, but {ratio:.3g} times the expected values"
        else:
            why = f"values in other places: the {source} was not converted like the weights"
        raise Mismatch(
            f"the momentum of {name!r}", "the same updates in the other framework", why, hint
        )


@exercise(
    "08_interop.pytorch.momentum_from_keras",
    "Move a Keras SGD optimizer's momentum into PyTorch's SGD",
    hint=MOMENTUM_HINT_TORCH,
)
def momentum_from_keras_check(momentum_from_keras):
    keras_m = _random_cnn_weights(seed=13)  # stands for the momentum of every weight
    layers = interop.layers_from_keras_arrays(keras_m)
    want = {k: -v / np.float32(LR) for k, v in interop.state_dict_from_layers(layers).items()}
    got = momentum_from_keras({k: v.copy() for k, v in keras_m.items()}, LR)
    _check_momentum(
        got, want, TORCH_NAMES, "momentum_from_keras", MOMENTUM_HINT_TORCH, "Keras layout"
    )
    return "PyTorch's SGD would continue exactly where Keras's stopped."


@exercise(
    "08_interop.tensorflow.momentum_from_torch",
    "Move a PyTorch SGD optimizer's momentum into Keras's SGD",
    hint=MOMENTUM_HINT_TF,
)
def momentum_from_torch_check(momentum_from_torch):
    keras_layout = _random_cnn_weights(seed=14)
    buffers = interop.state_dict_from_layers(interop.layers_from_keras_arrays(keras_layout))
    want = {k: -np.float32(LR) * v for k, v in keras_layout.items()}
    got = momentum_from_torch({k: v.copy() for k, v in buffers.items()}, LR)
    _check_momentum(
        got, want, KERAS_NAMES, "momentum_from_torch", MOMENTUM_HINT_TF, "PyTorch layout"
    )
    return "Keras's SGD would continue exactly where PyTorch's stopped."

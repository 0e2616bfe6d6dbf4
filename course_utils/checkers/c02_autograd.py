"""Checkers for 02_autograd: a VJP by hand, a clipped custom gradient, and gradient bookkeeping."""

import numpy as np

from ..checks import Mismatch, exercise, expect_close

X0 = [0.5, -1.0, 2.0]
V = [1.0, 2.0, 3.0]

VJP_HINT = (
    "Differentiate sum(v * fn(x)) with respect to x: PyTorch torch.autograd.grad(y, x, grad_outputs=v); "
    "TensorFlow tape.gradient(y, x, output_gradients=v) (watch x first)."
)


def _h_numpy(x):
    """The test functions' Jacobians, by hand, for the expected v @ J."""
    x0, x1, x2 = x
    return {
        "h": np.array([[x1, x0, 0], [0, 0, np.cos(x2)], [2 * x0, 0, 1]]),
        "square": np.diag(2 * np.asarray(x)),
    }


def _check_vjp(vjp, functions, make):
    jac = _h_numpy(X0)
    for name, fn in functions.items():
        got = vjp(fn, make(X0), make(V))
        if got is None:
            raise Mismatch(
                f"vjp({name}, x, v) returned None", "a tensor of shape (3,)", "None", VJP_HINT
            )
        expect_close(
            f"vjp({name}, x, v) for x = {X0}, v = {V}",
            got,
            np.asarray(V) @ jac[name],
            rtol=1e-10,
            atol=1e-12,
            hint=VJP_HINT,
        )
    return "v @ J matches for both test functions."


@exercise("02_autograd.pytorch.vjp", "Implement a vector-Jacobian product by hand", hint=VJP_HINT)
def vjp_torch(vjp):
    import torch

    functions = {
        "h": lambda x: torch.stack([x[0] * x[1], torch.sin(x[2]), x[0] ** 2 + x[2]]),
        "square": lambda x: x**2,
    }
    return _check_vjp(vjp, functions, lambda v: torch.tensor(v, dtype=torch.float64))


@exercise(
    "02_autograd.tensorflow.vjp", "Implement a vector-Jacobian product by hand", hint=VJP_HINT
)
def vjp_tf(vjp):
    import tensorflow as tf

    functions = {
        "h": lambda x: tf.stack([x[0] * x[1], tf.sin(x[2]), x[0] ** 2 + x[2]]),
        "square": lambda x: x**2,
    }
    return _check_vjp(vjp, functions, lambda v: tf.constant(v, dtype=tf.float64))


CLIP_HINT = (
    "The forward pass returns x unchanged; the backward pass returns the upstream gradient "
    "clipped to [-1, 1] (torch.clamp / tf.clip_by_value)."
)
CLIP_X = [-3.0, 0.2, 4.0]
CLIP_SCALES = [(5.0, [1.0, 1.0, 1.0]), (0.5, [0.5, 0.5, 0.5]), (-2.0, [-1.0, -1.0, -1.0])]


@exercise("02_autograd.pytorch.clip_gradient", "Write a clipped custom gradient", hint=CLIP_HINT)
def clip_torch(clip_gradient):
    import torch

    for scale, want in CLIP_SCALES:
        x = torch.tensor(CLIP_X, dtype=torch.float64, requires_grad=True)
        y = clip_gradient(x)
        expect_close(
            "clip_gradient(x) (the forward value should be x)", y.detach(), CLIP_X, hint=CLIP_HINT
        )
        (grad,) = torch.autograd.grad((scale * y).sum(), x)
        expect_close(f"the gradient of sum({scale} * clip_gradient(x))", grad, want, hint=CLIP_HINT)
    return "identity forward, clipped gradient backward."


@exercise("02_autograd.tensorflow.clip_gradient", "Write a clipped custom gradient", hint=CLIP_HINT)
def clip_tf(clip_gradient):
    import tensorflow as tf

    for scale, want in CLIP_SCALES:
        x = tf.constant(CLIP_X, dtype=tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = clip_gradient(x)
            total = tf.reduce_sum(scale * y)
        expect_close("clip_gradient(x) (the forward value should be x)", y, CLIP_X, hint=CLIP_HINT)
        grad = tape.gradient(total, x)
        if grad is None:
            raise Mismatch(
                f"the gradient of sum({scale} * clip_gradient(x))", want, "None", CLIP_HINT
            )
        expect_close(f"the gradient of sum({scale} * clip_gradient(x))", grad, want, hint=CLIP_HINT)
    return "identity forward, clipped gradient backward."


STEP_HINT = (
    "PyTorch: .grad adds up across backward() calls; set w.grad = None (or call w.grad.zero_()) "
    "before each step. TensorFlow: a tape answers one gradient() call unless it is persistent=True, "
    "and both losses must be computed inside the tape."
)
W0 = [1.0, -2.0]
BATCHES = [[0.5, 1.0], [2.0, -1.0], [-1.0, 3.0]]


def _expected_step_grads():
    w = np.asarray(W0)
    return [2 * (w * np.asarray(b)) * np.asarray(b) for b in BATCHES]  # d/dw sum((w*b)^2)


@exercise("02_autograd.pytorch.step_gradients", "Fix the gradient bookkeeping bug", hint=STEP_HINT)
def steps_torch(step_gradients):
    import torch

    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    batches = [torch.tensor(b, dtype=torch.float64) for b in BATCHES]
    got = step_gradients(w, batches)
    if not isinstance(got, list | tuple) or len(got) != len(BATCHES):
        raise Mismatch(
            "step_gradients should return one gradient per batch",
            f"a list of {len(BATCHES)}",
            repr(type(got).__name__),
            STEP_HINT,
        )
    for i, (g, want) in enumerate(zip(got, _expected_step_grads(), strict=True)):
        expect_close(
            f"the gradient for batch {i} (loss = sum((w * batch)**2))", g, want, hint=STEP_HINT
        )
    return "each step's gradient is that batch's alone."


@exercise(
    "02_autograd.tensorflow.two_gradients", "Fix the gradient bookkeeping bug", hint=STEP_HINT
)
def two_gradients_tf(two_gradients):
    import tensorflow as tf

    w = tf.Variable(W0, dtype=tf.float64)
    b = tf.constant(BATCHES[0], dtype=tf.float64)
    got = two_gradients(w, b)
    if not isinstance(got, list | tuple) or len(got) != 2:
        raise Mismatch(
            "two_gradients should return a pair",
            "(grad of loss1, grad of loss2)",
            repr(got),
            STEP_HINT,
        )
    wn, bn = np.asarray(W0), np.asarray(BATCHES[0])
    for name, g, want in (
        ("sum(w * b)", got[0], bn),
        ("sum((w * b)**2)", got[1], 2 * wn * bn * bn),
    ):
        if g is None:
            raise Mismatch(f"the gradient of {name}", want.tolist(), "None", STEP_HINT)
        expect_close(f"the gradient of {name}", g, want, hint=STEP_HINT)
    return "one persistent tape, two gradients."

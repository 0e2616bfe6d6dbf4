"""Tests for 02_autograd: the two tracks' records agree, the same quantities computed directly
in both frameworks agree, and the exercise checkers pass, refuse stubs and explain mistakes."""

from pathlib import Path

import numpy as np
import pytest

from course_utils.checks import check
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
CONCEPT = "02_autograd"
X0 = [0.5, -1.0, 2.0]
V = [1.0, 2.0, 3.0]
POINTS = [-1000.0, 0.0, 2.0, 1000.0]
# float64 throughout: both frameworks evaluate sin/cos/exp to within a few ulps, and records keep
# 12 significant digits, so 1e-10 relative is tight yet robust to last-digit rounding.
RTOL, ATOL = 1e-10, 1e-12
PARITY = [
    "grad_f",
    "vjp_h",
    "jacobian_h",
    "hessian_f",
    "grad_stopped",
    "softplus_custom_grad",
    "softplus_stable_autograd_grad",
    "norm_at_zero_custom_grad",
    "fd_grad_f",
]


def _records(track):
    return by_name(read_records(ROOT / "notebooks" / CONCEPT / f"{track}.ipynb"))


@pytest.fixture(scope="module")
def records():
    return _records("pytorch"), _records("tensorflow")


@pytest.mark.parametrize("name", PARITY)
def test_tracks_agree(records, name):
    pt, tf = records
    assert name in pt and name in tf, f"{name} missing from a track's records"
    # finite-difference quotients lose ~6 digits to cancellation: compare them at 1e-8 absolute
    atol = 1e-8 if name == "fd_grad_f" else ATOL
    np.testing.assert_allclose(np.asarray(pt[name]), np.asarray(tf[name]), rtol=RTOL, atol=atol)


def test_tracks_agree_on_the_booleans(records):
    pt, tf = records
    assert pt["softplus_naive_grad_finite"] is False and tf["softplus_naive_grad_finite"] is False
    assert pt["fd_max_error_below_1e-7"] is True and tf["fd_max_error_below_1e-7"] is True
    assert pt["fd_max_abs_diff"] < 1e-7 and tf["fd_max_abs_diff"] < 1e-7
    assert tf["compute_gradient_rel_diff"] <= 1e-5
    assert (
        pt["norm_at_zero_autograd_finite"] is False and tf["norm_at_zero_autograd_finite"] is False
    )


def test_the_stable_forward_gets_the_kink_wrong_and_the_custom_gradient_does_not(records):
    # At x = 0 autograd of max(x, 0) + log1p(exp(-|x|)) takes one side's slope of each kink.
    for rec in records:
        stable, custom = rec["softplus_stable_autograd_grad"], rec["softplus_custom_grad"]
        assert stable[1] == 1.0 and custom[1] == 0.5
        np.testing.assert_allclose(np.delete(stable, 1), np.delete(custom, 1), rtol=RTOL)


def test_records_match_the_formulas(records):
    x = np.asarray(X0)
    grad = np.cos(x) * x**2 + 2 * x * np.sin(x)
    hess = np.diag(-np.sin(x) * x**2 + 4 * x * np.cos(x) + 2 * np.sin(x))
    with np.errstate(over="ignore"):
        sigmoid = 1 / (1 + np.exp(-np.asarray(POINTS)))
    for rec in records:
        np.testing.assert_allclose(rec["grad_f"], grad, rtol=RTOL)
        np.testing.assert_allclose(rec["hessian_f"], hess, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(rec["grad_stopped"], x, rtol=0)
        np.testing.assert_allclose(rec["softplus_custom_grad"], sigmoid, rtol=RTOL)


def _torch_quantities():
    torch = pytest.importorskip("torch")
    from torch.func import hessian, jacrev, vjp

    def f(x):
        return (torch.sin(x) * x**2).sum()

    def h(x):
        return torch.stack([x[0] * x[1], torch.sin(x[2]), x[0] ** 2 + x[2]])

    class StableSoftplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.sigmoid(x)

    x = torch.tensor(X0, dtype=torch.float64)
    _, vjp_fn = vjp(h, x)
    p = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    (naive,) = torch.autograd.grad(torch.log(1 + torch.exp(p)).sum(), p)
    (custom,) = torch.autograd.grad(StableSoftplus.apply(p).sum(), p)
    return {
        "grad_f": jacrev(f)(x).numpy(),
        "vjp_h": vjp_fn(torch.tensor(V, dtype=torch.float64))[0].numpy(),
        "jacobian_h": jacrev(h)(x).numpy(),
        "hessian_f": hessian(f)(x).numpy(),
        "naive_finite": bool(torch.isfinite(naive).all()),
        "softplus_custom_grad": custom.numpy(),
    }


def _tf_quantities():
    tf = pytest.importorskip("tensorflow")

    def f(x):
        return tf.reduce_sum(tf.sin(x) * x**2)

    def h(x):
        return tf.stack([x[0] * x[1], tf.sin(x[2]), x[0] ** 2 + x[2]])

    @tf.custom_gradient
    def stable_softplus(x):
        def grad(g):
            return g * tf.sigmoid(x)

        return tf.maximum(x, 0) + tf.math.log1p(tf.exp(-tf.abs(x))), grad

    x = tf.constant(X0, dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        hx = h(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            fx = f(x)
        g = inner.gradient(fx, x)
    p = tf.constant(POINTS, dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape2:
        tape2.watch(p)
        naive = tf.reduce_sum(tf.math.log(1 + tf.exp(p)))
        custom = tf.reduce_sum(stable_softplus(p))
    return {
        "grad_f": g.numpy(),
        "vjp_h": tape.gradient(hx, x, output_gradients=tf.constant(V, dtype=tf.float64)).numpy(),
        "jacobian_h": tape.jacobian(hx, x).numpy(),
        "hessian_f": tape.jacobian(g, x).numpy(),
        "naive_finite": bool(np.isfinite(tape2.gradient(naive, p)).all()),
        "softplus_custom_grad": tape2.gradient(custom, p).numpy(),
    }


def test_direct_computation_agrees_across_frameworks(records):
    pt, tf = _torch_quantities(), _tf_quantities()
    assert pt["naive_finite"] is False and tf["naive_finite"] is False
    for name in ("grad_f", "vjp_h", "jacobian_h", "hessian_f", "softplus_custom_grad"):
        np.testing.assert_allclose(pt[name], tf[name], rtol=RTOL, atol=ATOL, err_msg=name)
        np.testing.assert_allclose(pt[name], records[0][name], rtol=RTOL, atol=ATOL, err_msg=name)


def test_finite_differences_in_both_frameworks():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: (torch.sin(t) * t**2).sum(), (x,))
    theoretical, numerical = tf.test.compute_gradient(
        lambda t: tf.reduce_sum(tf.sin(t) * t**2), [tf.constant(X0, dtype=tf.float64)]
    )
    # compute_gradient's own step is large (float32-friendly): agreement to about 1e-5 relative
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


# --- the exercise checkers ------------------------------------------------------------------


def _stub(*args, **kwargs):
    raise NotImplementedError


def _status(exercise, answer):
    result = check(f"{CONCEPT}.{exercise}", answer)
    return result.status, result.message


def _assert_checker(exercise, right, wrong):
    assert _status(exercise, right)[0] == "passed"
    assert _status(exercise, _stub)[0] == "not solved"
    status, message = _status(exercise, wrong)
    assert status == "wrong", message
    assert "expected" in message and "got" in message


def test_vjp_checkers():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")

    def right_torch(fn, x, v):
        x = x.clone().requires_grad_(True)
        return torch.autograd.grad(fn(x), x, grad_outputs=v)[0]

    def wrong_torch(fn, x, v):  # J @ v instead of v @ J
        return torch.func.jacrev(fn)(x) @ v

    def right_tf(fn, x, v):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x, output_gradients=v)

    def wrong_tf(fn, x, v):  # forgets to watch the constant: gradient None
        with tf.GradientTape() as tape:
            y = fn(x)
        return tape.gradient(y, x, output_gradients=v)

    _assert_checker("pytorch.vjp", right_torch, wrong_torch)
    _assert_checker("tensorflow.vjp", right_tf, wrong_tf)


def test_clip_gradient_checkers():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")

    class Clip(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g.clamp(-1, 1)

    def wrong_torch(x):  # clips the value, not the gradient
        return x.clamp(-1, 1)

    @tf.custom_gradient
    def clip_tf(x):
        return tf.identity(x), lambda g: tf.clip_by_value(g, -1.0, 1.0)

    @tf.custom_gradient
    def wrong_tf(x):  # clips to [0, 1]
        return tf.identity(x), lambda g: tf.clip_by_value(g, 0.0, 1.0)

    _assert_checker("pytorch.clip_gradient", Clip.apply, wrong_torch)
    _assert_checker("tensorflow.clip_gradient", clip_tf, wrong_tf)


def test_bookkeeping_checkers():
    pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")

    def right_torch(w, batches):
        out = []
        for b in batches:
            w.grad = None
            ((w * b) ** 2).sum().backward()
            out.append(w.grad.clone())
        return out

    def wrong_torch(w, batches):  # never zeroes: gradients accumulate
        out = []
        for b in batches:
            ((w * b) ** 2).sum().backward()
            out.append(w.grad.clone())
        return out

    def right_tf(w, b):
        with tf.GradientTape(persistent=True) as tape:
            l1, l2 = tf.reduce_sum(w * b), tf.reduce_sum((w * b) ** 2)
        return tape.gradient(l1, w), tape.gradient(l2, w)

    def wrong_tf(w, b):  # two tapes, but loss2 computed outside its tape: None
        with tf.GradientTape() as t1:
            l1 = tf.reduce_sum(w * b)
        l2 = tf.reduce_sum((w * b) ** 2)
        with tf.GradientTape() as t2:
            pass
        return t1.gradient(l1, w), t2.gradient(l2, w)

    _assert_checker("pytorch.step_gradients", right_torch, wrong_torch)
    _assert_checker("tensorflow.two_gradients", right_tf, wrong_tf)
    status, message = _status("tensorflow.two_gradients", lambda w, b: _broken_tape(tf, w, b))
    assert status == "error" and "non-persistent" in message


def _broken_tape(tf, w, b):
    with tf.GradientTape() as tape:
        l1, l2 = tf.reduce_sum(w * b), tf.reduce_sum((w * b) ** 2)
    return tape.gradient(l1, w), tape.gradient(l2, w)

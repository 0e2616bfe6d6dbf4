"""Checkers for 09_claims_lab: decide a speed difference from spreads, decide accuracy parity from
the seed-to-seed spread (both tracks), and look inside a running model: forward hooks (PyTorch),
running a ``tf.function`` eagerly (TensorFlow)."""

from ..checks import Mismatch, exercise, expect_close, expect_equal

SPREAD_HINT = (
    "Take the first and third quartiles of each list (statistics.quantiles(times, n=4, "
    'method="inclusive")): "a faster" when a\'s third quartile is below b\'s first, "b faster" '
    'in the mirror case, else "inconclusive".'
)
# (times_a, times_b, answer): each answer is right by construction, whatever the machine.
SPREAD_CASES = [
    ([1.0, 1.1, 1.2, 1.3, 1.4], [2.0, 2.1, 2.2, 2.3, 2.4], "a faster"),
    ([2.0, 2.1, 2.2, 2.3, 2.4], [1.0, 1.1, 1.2, 1.3, 1.4], "b faster"),
    ([1.0, 1.5, 2.0, 2.5, 3.0], [1.8, 2.0, 2.2, 2.4, 2.6], "inconclusive"),
    # medians far apart but quartile ranges overlap: still inconclusive
    ([1.0, 1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 4.0, 4.0, 4.0], "inconclusive"),
    # one outlier does not hide a clear difference
    ([1.0, 1.0, 1.0, 1.0, 9.0], [2.0, 2.0, 2.0, 2.0, 2.0], "a faster"),
    ([5.0], [6.0], "a faster"),
]


def _check_spread(clear_difference):
    for a, b, answer in SPREAD_CASES:
        expect_equal(
            f"clear_difference({a}, {b})", clear_difference(a, b), answer, hint=SPREAD_HINT
        )
    return "the same rule the claims lab applies to every timing."


ACCURACY_HINT = (
    "Return None with fewer than two seeds. Otherwise compare |mean(a) - mean(b)| with "
    "max(stdev(a), stdev(b), 1 / n_test): True when it is not larger."
)
# (acc_a, acc_b, n_test, answer), right by construction
ACCURACY_CASES = [
    ([0.90, 0.92, 0.94], [0.90, 0.92, 0.94], 100, True),
    ([0.90, 0.92, 0.94], [0.91, 0.93, 0.95], 100, True),  # 0.01 apart, spread 0.02
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], 100, False),  # 0.10 apart, spread 0.01
    ([0.90, 0.90, 0.90], [0.905, 0.905, 0.905], 100, True),  # no spread: one example is the floor
    ([0.90, 0.90, 0.90], [0.92, 0.92, 0.92], 100, False),  # two examples apart, no spread
    ([0.90], [0.95], 100, None),  # one seed: no spread to compare with
]


def _check_accuracy(same_accuracy):
    for a, b, n, answer in ACCURACY_CASES:
        got = same_accuracy(a, b, n)
        if got is not None and not isinstance(got, bool):
            raise Mismatch("same_accuracy() should return True, False or None", "a bool", repr(got))
        expect_equal(f"same_accuracy({a}, {b}, {n})", got, answer, hint=ACCURACY_HINT)
    return "the rule the lab uses for C7, including when there is no spread to compare with."


for _track in ("pytorch", "tensorflow"):
    exercise(
        f"09_claims_lab.{_track}.clear_difference", "A clear difference or noise", hint=SPREAD_HINT
    )(_check_spread)
    exercise(
        f"09_claims_lab.{_track}.same_accuracy",
        "The same accuracy, within the spread",
        hint=ACCURACY_HINT,
    )(_check_accuracy)


HOOK_HINT = (
    "For every torch.nn.Linear in model.modules(), register_forward_hook(lambda module, inputs, "
    "output: outputs.append(output.detach())); run model(x) once; then call .remove() on every "
    "handle, also when the call fails (try/finally)."
)


@exercise("09_claims_lab.pytorch.capture_outputs", "See inside a model with hooks", hint=HOOK_HINT)
def capture_outputs(capture):
    import torch

    from ..compiling import torch_mlp

    model = torch_mlp(4, 8, d_out=3, depth=2, seed=1)
    x = torch.linspace(-1, 1, 8).reshape(2, 4)
    got = capture(model, x)
    if not isinstance(got, list | tuple):
        raise Mismatch(
            "capture_outputs() should return a list", "a list of tensors", type(got).__name__
        )
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    expected, h = [], x
    with torch.no_grad():
        for module in model:
            h = module(h)
            if isinstance(module, torch.nn.Linear):
                expected.append(h)
    expect_equal(
        "how many outputs were captured (one per Linear layer)", len(got), len(linears), HOOK_HINT
    )
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        expect_close(f"output of Linear layer {i}", g, e, rtol=1e-5, atol=1e-6, hint=HOOK_HINT)
    left = sum(len(m._forward_hooks) for m in model.modules())
    expect_equal("forward hooks still registered after capture_outputs()", left, 0, HOOK_HINT)
    return "every Linear layer's output, read without editing the model, and the hooks removed."


EAGER_HINT = (
    "Remember tf.config.functions_run_eagerly(), set tf.config.run_functions_eagerly(True), call "
    "fn(*args), and restore the remembered setting in a finally: block."
)


@exercise("09_claims_lab.tensorflow.call_eagerly", "Debug a tf.function eagerly", hint=EAGER_HINT)
def call_eagerly(run_eagerly):
    import numpy as np
    import tensorflow as tf

    seen = []

    @tf.function
    def double(x):
        seen.append(x.numpy())  # only possible when the function runs eagerly
        return x * 2

    before = tf.config.functions_run_eagerly()
    try:
        out = run_eagerly(double, tf.constant([1.0, 2.0]))
    except AttributeError as err:  # .numpy() on a symbolic tensor: the function was traced
        if "numpy" in str(err):
            raise Mismatch(
                "the tf.function ran as a graph (x.numpy() failed on a symbolic tensor)",
                "an eager run, where x has values",
                str(err).splitlines()[0],
                EAGER_HINT,
            ) from None
        raise
    finally:
        after = tf.config.functions_run_eagerly()
        tf.config.run_functions_eagerly(before)
    expect_close("the function's result", out, [2.0, 4.0], hint=EAGER_HINT)
    expect_equal(
        "values seen inside the function", [v.tolist() for v in seen], [[1.0, 2.0]], EAGER_HINT
    )
    expect_equal("tf.config.functions_run_eagerly() afterwards", after, before, EAGER_HINT)

    @tf.function
    def broken(x):
        raise ValueError("a bug inside the model")

    try:
        run_eagerly(broken, tf.constant(1.0))
    except ValueError:
        pass
    else:
        raise Mismatch(
            "an error inside fn should reach the caller", "ValueError", "no error", EAGER_HINT
        )
    finally:
        after_error = tf.config.functions_run_eagerly()
        tf.config.run_functions_eagerly(before)
    expect_equal("the setting after fn raised", after_error, before, EAGER_HINT)
    return f"values {np.asarray(seen[0]).tolist()} seen inside, and the setting restored, also after an error."

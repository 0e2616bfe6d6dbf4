"""Checkers for 04_eager_vs_compiled: remove a graph break (PyTorch), remove a retrace
(TensorFlow), and decide from measurements whether compiling pays (both tracks)."""

from ..checks import Mismatch, exercise, expect_close, expect_equal

BREAK_HINT = (
    "`.item()` and a Python `if` on a tensor's value leave the graph. Compute the condition "
    "as a tensor and use it arithmetically, e.g. torch.where(cond, y + 1, y)."
)


def reference_step(x):
    """The exercise's original function (with a graph break), used for the expected values."""
    import torch

    y = torch.relu(x) * 2
    if y.sum().item() > 0:
        y = y + 1
    return y


@exercise("04_eager_vs_compiled.pytorch.no_graph_break", "Remove a graph break", hint=BREAK_HINT)
def no_graph_break(step_fixed):
    import torch

    inputs = [torch.linspace(-1, 1, 6), -torch.ones(4), torch.arange(5.0) - 1]
    for x in inputs:
        expect_close(
            f"step_fixed({x.tolist()})",
            step_fixed(x),
            reference_step(x),
            hint="Same values as step(): relu, times 2, plus 1 only when the sum is positive.",
        )
    torch._dynamo.reset()
    explained = torch._dynamo.explain(step_fixed)(inputs[0])
    if explained.graph_break_count:
        first = str(explained.break_reasons[0].reason).strip().splitlines()[0]
        raise Mismatch(
            "torch._dynamo.explain still finds graph breaks",
            "0 graph breaks",
            f"{explained.graph_break_count} ({first})",
            BREAK_HINT,
        )
    return "same values as before, now captured in one graph."


RETRACE_HINT = (
    "Give tf.function an input_signature: x as tf.TensorSpec([None], tf.float32) and scale "
    "as tf.TensorSpec([], tf.float32); Python floats are then converted to tensors."
)
RETRACE_CALLS = [(3, 0.5), (5, 1.0), (7, 2.0), (3, 3.0)]


@exercise("04_eager_vs_compiled.tensorflow.no_retrace", "Remove a retrace", hint=RETRACE_HINT)
def no_retrace(make_scaled_sum):
    import numpy as np
    import tensorflow as tf

    fn = make_scaled_sum()
    if not hasattr(fn, "experimental_get_tracing_count"):
        raise Mismatch(
            "make_scaled_sum() should return a tf.function",
            "a tf.function",
            type(fn).__name__,
            RETRACE_HINT,
        )
    for n, scale in RETRACE_CALLS:
        x = np.arange(n, dtype=np.float32)
        expect_close(
            f"scaled_sum(arange({n}), {scale})",
            fn(tf.constant(x), scale),
            x.sum() * scale,
            hint="Return tf.reduce_sum(x) * scale.",
        )
    expect_equal(
        f"traces after {len(RETRACE_CALLS)} calls (3 shapes, 4 Python scales)",
        fn.experimental_get_tracing_count(),
        1,
        hint=RETRACE_HINT,
    )
    return "one trace serves every shape and every scale."


PAYS_HINT = (
    "n steps cost n * eager_step_s eagerly and first_call_s + (n - 1) * compiled_step_s "
    "compiled; find the smallest n where the compiled total is strictly smaller."
)
CASES = [
    (10.0, 0.010, 0.0045),
    (2.0, 0.5, 0.1),
    (0.05, 0.1, 0.09),
    (5.0, 0.01, 0.01),
    (3.0, 0.002, 0.003),
    (0.001, 0.2, 0.1),
]


def _check_break_even(break_even_steps):
    from ..compiling import break_even_steps as ref

    for args in CASES:
        expect_equal(
            f"break_even_steps(first_call_s={args[0]}, eager_step_s={args[1]}, compiled_step_s={args[2]})",
            break_even_steps(*args),
            ref(*args),
            hint=PAYS_HINT,
        )
    return "break-even step counts right, including 'never' (None)."


def _check_compile_pays(compile_pays):
    from ..compiling import compile_pays as ref

    for args in CASES:
        for steps in (1, 10, 1000, 10_000):
            got = compile_pays(*args, steps)
            if not isinstance(got, bool):
                raise Mismatch("compile_pays() should return a bool", "True or False", repr(got))
            expect_equal(
                f"compile_pays({', '.join(map(str, args))}, steps={steps})",
                got,
                ref(*args, steps),
                hint=PAYS_HINT,
            )
    return "right verdict for every workload."


for _track in ("pytorch", "tensorflow"):
    exercise(
        f"04_eager_vs_compiled.{_track}.break_even_steps", "Break-even step count", hint=PAYS_HINT
    )(_check_break_even)
    exercise(f"04_eager_vs_compiled.{_track}.compile_pays", "Does compiling pay?", hint=PAYS_HINT)(
        _check_compile_pays
    )

"""Checkers for 01_graphs: counting a captured graph's ops, finding a result's inputs, and
making a side effect run on every call of a captured function."""

from ..checks import Mismatch, exercise, expect_equal

COUNT_HINT = (
    "Capture the function, then loop over the graph's nodes (PyTorch: gm.graph.nodes, keep "
    "op == 'call_function' or 'call_method'; TensorFlow: concrete.graph.get_operations()) and count "
    "each name with collections.Counter."
)


def _torch_cases():
    import torch

    return [
        lambda x: torch.relu(x) + torch.relu(x * 2),
        lambda x, w: torch.tanh(x @ w).sum(),
        lambda x: (x.exp() - 1).sum(),
    ]


def _expected_torch_counts(fn):
    from collections import Counter

    import torch.fx

    gm = torch.fx.symbolic_trace(fn)
    kept = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method")]
    return dict(Counter(getattr(n.target, "__name__", str(n.target)) for n in kept))


@exercise(
    "01_graphs.pytorch.count_ops", "Count the operations of a captured function", hint=COUNT_HINT
)
def count_ops_torch(count_ops):
    for fn in _torch_cases():
        got = count_ops(fn)
        if not isinstance(got, dict):
            raise Mismatch(
                "count_ops() should return a dict {op name: count}", "a dict", type(got).__name__
            )
        expect_equal(
            "count_ops(fn) for one of the test functions",
            dict(got),
            _expected_torch_counts(fn),
            hint=COUNT_HINT,
        )
    return "every call_function and call_method node counted, by name."


def _tf_cases():
    import tensorflow as tf

    return [
        (lambda x: tf.nn.relu(x) + tf.nn.relu(x * 2), (tf.TensorSpec([3], tf.float32),)),
        (
            lambda x, w: tf.reduce_sum(tf.tanh(x @ w)),
            (tf.TensorSpec([2, 3], tf.float32), tf.TensorSpec([3, 2], tf.float32)),
        ),
        (lambda x: tf.reduce_sum(tf.exp(x) - 1), (tf.TensorSpec([4], tf.float32),)),
    ]


@exercise(
    "01_graphs.tensorflow.count_ops", "Count the operations of a captured function", hint=COUNT_HINT
)
def count_ops_tf(count_ops):
    from collections import Counter

    import tensorflow as tf

    for fn, specs in _tf_cases():
        got = count_ops(fn, *specs)
        if not isinstance(got, dict):
            raise Mismatch(
                "count_ops() should return a dict {op type: count}", "a dict", type(got).__name__
            )
        ops = tf.function(fn).get_concrete_function(*specs).graph.get_operations()
        expect_equal(
            "count_ops(fn, *specs) for one of the test functions",
            dict(got),
            dict(Counter(op.type for op in ops)),
            hint=COUNT_HINT,
        )
    return "every op of the traced graph counted, by type."


INPUTS_HINT = (
    "Start at the result and walk backwards, remembering what you have seen. PyTorch: "
    "grad_fn.next_functions, and an AccumulateGrad node's .variable is the leaf tensor. "
    "TensorFlow: op.inputs[i].op, and keep the ops whose type is 'Placeholder'."
)


@exercise("01_graphs.pytorch.find_inputs", "Find the inputs a result depends on", hint=INPUTS_HINT)
def find_inputs_torch(find_inputs):
    import torch

    a, b, c, d = (torch.tensor([float(i + 1)], requires_grad=True) for i in range(4))
    k = torch.tensor([5.0])  # does not require grad: not in the graph
    cases = [
        ("(a * b).sum()", (a * b).sum(), {"a", "b"}),
        ("(a * a + k).sum()", (a * a + k).sum(), {"a"}),
        ("(torch.sin(a) * b + c * k).sum()", (torch.sin(a) * b + c * k).sum(), {"a", "b", "c"}),
    ]
    names = {id(t): n for n, t in zip("abcd", (a, b, c, d), strict=True)}
    for text, result, want in cases:
        got = find_inputs(result)
        try:
            got_names = sorted(names.get(id(t), "<another tensor>") for t in got)
        except TypeError:
            raise Mismatch(
                f"find_inputs({text}) should return a list of tensors",
                "a list",
                type(got).__name__,
                INPUTS_HINT,
            ) from None
        expect_equal(
            f"find_inputs({text}), as the names of the tensors returned",
            got_names,
            sorted(want),
            hint=INPUTS_HINT,
        )
    return "each leaf found once; k, which does not require grad, is not in the graph."


@exercise(
    "01_graphs.tensorflow.find_inputs", "Find the inputs a result depends on", hint=INPUTS_HINT
)
def find_inputs_tf(find_inputs):
    import tensorflow as tf

    spec = tf.TensorSpec([1], tf.float32)
    cases = [
        ("a * b", lambda a, b, c: a * b, {"a", "b"}),
        ("a * a + 5", lambda a, b, c: a * a + 5.0, {"a"}),
        ("sin(a) * b + c", lambda a, b, c: tf.sin(a) * b + c, {"a", "b", "c"}),
    ]
    for text, fn, want in cases:
        concrete = tf.function(fn).get_concrete_function(spec, spec, spec)
        got = find_inputs(concrete)
        if not isinstance(got, list | tuple | set):
            raise Mismatch(
                f"find_inputs for {text} should return a list of names",
                "a list",
                type(got).__name__,
                INPUTS_HINT,
            )
        expect_equal(
            f"find_inputs(concrete function of {text})", sorted(got), sorted(want), hint=INPUTS_HINT
        )
    return "each placeholder found once, by walking op.inputs back from the output."


COUNTER_HINT = (
    "A Python counter runs only while the function is captured. Keep the count in state the "
    "graph can update: PyTorch, a buffer changed in place (self.calls.add_(1)); TensorFlow, a "
    "tf.Variable changed with assign_add(1) inside the tf.function."
)


@exercise(
    "01_graphs.pytorch.count_calls", "Make a side effect run on every call", hint=COUNTER_HINT
)
def count_calls_torch(make_counted_square):
    import torch

    module = make_counted_square()
    if not isinstance(module, torch.nn.Module):
        raise Mismatch(
            "make_counted_square() should return an nn.Module", "nn.Module", type(module).__name__
        )
    program = torch.export.export(module, (torch.tensor([1.0, 2.0]),))
    captured = program.module()
    values = [captured(torch.tensor([float(v), 3.0])) for v in range(3)]
    expect_equal(
        "captured(x) for x = [v, 3.0], v = 0, 1, 2",
        [v.tolist() for v in values],
        [[0.0, 9.0], [1.0, 9.0], [4.0, 9.0]],
        hint=COUNTER_HINT,
    )
    calls = getattr(captured, "calls", None)
    if calls is None:
        raise Mismatch(
            "the exported module has no buffer named 'calls'",
            "a buffer 'calls'",
            "none",
            COUNTER_HINT,
        )
    expect_equal(
        "the 'calls' buffer after 3 calls of the exported module", int(calls), 3, hint=COUNTER_HINT
    )
    return "torch.export recorded the buffer update, so it runs on every call."


@exercise(
    "01_graphs.tensorflow.count_calls", "Make a side effect run on every call", hint=COUNTER_HINT
)
def count_calls_tf(make_counted_square):
    import tensorflow as tf

    square, calls = make_counted_square()
    if not isinstance(calls, tf.Variable):
        raise Mismatch(
            "the counter should be a tf.Variable", "tf.Variable", type(calls).__name__, COUNTER_HINT
        )
    if not hasattr(square, "get_concrete_function"):
        raise Mismatch(
            "square should be a tf.function", "a tf.function", type(square).__name__, COUNTER_HINT
        )
    values = [square(tf.constant([float(v), 3.0])).numpy().tolist() for v in range(3)]
    expect_equal(
        "square(x) for x = [v, 3.0], v = 0, 1, 2",
        values,
        [[0.0, 9.0], [1.0, 9.0], [4.0, 9.0]],
        hint=COUNTER_HINT,
    )
    expect_equal(
        "the counter after 3 calls of the tf.function", int(calls.numpy()), 3, hint=COUNTER_HINT
    )
    return "the counter is a graph op, so it runs on every call."

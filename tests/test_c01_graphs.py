"""Tests for 01_graphs: the graph helper, the two tracks' records, and the exercise checkers."""

from pathlib import Path

import pytest

from course_utils import graphs
from course_utils.checks import check
from course_utils.records import by_name, read_records

ROOT = Path(__file__).resolve().parents[1]
CONCEPT = "01_graphs"


def _records(track):
    return by_name(read_records(ROOT / "notebooks" / CONCEPT / f"{track}.ipynb"))


# --- the graph helper -------------------------------------------------------------------


def test_graph_depths_counts_and_sources():
    g = graphs.Graph(["a", "b", "mul", "add", "out"], [(0, 2), (1, 2), (2, 3), (0, 3), (3, 4)])
    assert g.depths() == [0, 0, 1, 2, 3]
    assert g.sources() == [0, 1]
    assert g.counts() == {"a": 1, "add": 1, "b": 1, "mul": 1, "out": 1}
    assert "mul  <- a, b" in str(g)
    positions = graphs.layout(g)
    assert positions[0][1] == positions[1][1] == 0 and positions[4][1] == -3


def test_graph_with_a_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        graphs.Graph(["a", "b"], [(0, 1), (1, 0)]).depths()


def test_draw_puts_one_label_per_node():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = graphs.Graph(["x", "w", "matmul"], [(0, 2), (1, 2)], title="t")
    ax = graphs.draw(g)
    labels = sorted(t.get_text() for t in ax.texts if t.get_text())
    arrows = [t for t in ax.texts if not t.get_text()]  # one empty annotation per edge
    assert labels == ["matmul", "w", "x"] and len(arrows) == 2
    plt.close("all")


def test_from_autograd_walks_to_the_leaves():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, 3, requires_grad=True)
    w = torch.ones(3, 2, requires_grad=True)
    g = graphs.from_autograd(torch.tanh(x @ w).sum())
    assert g.counts()["AccumulateGrad"] == 2
    assert g.nodes[0] == "SumBackward0"  # the walk starts at the result
    assert len(g.sources()) == 2 and all(g.nodes[i] == "AccumulateGrad" for i in g.sources())
    with pytest.raises(ValueError, match="leaf"):
        graphs.from_autograd(x)


def test_from_fx_and_from_export_agree():
    torch = pytest.importorskip("torch")
    fx = pytest.importorskip("torch.fx")

    def f(x, w):
        return torch.tanh(x @ w).sum()

    class F(torch.nn.Module):
        def forward(self, x, w):
            return f(x, w)

    traced = graphs.from_fx(fx.symbolic_trace(f))
    exported = graphs.from_fx(torch.export.export(F(), (torch.ones(2, 3), torch.ones(3, 2))))
    for g in (traced, exported):
        assert {"matmul", "tanh", "sum"} <= set(g.nodes)
        assert [n for n in g.nodes if n.startswith("placeholder:")] == [
            "placeholder:x",
            "placeholder:w",
        ]
        assert max(g.depths()) == 4  # placeholder -> matmul -> tanh -> sum -> output


def test_from_tf_follows_op_inputs():
    tf = pytest.importorskip("tensorflow")

    def f(x, w):
        return tf.reduce_sum(tf.tanh(x @ w))

    concrete = tf.function(f).get_concrete_function(
        tf.TensorSpec([2, 3], tf.float32), tf.TensorSpec([3, 2], tf.float32)
    )
    g = graphs.from_tf(concrete)
    assert g.counts()["Placeholder"] == 2
    matmul = g.nodes.index("MatMul")
    assert sorted(g.nodes[s] for s, t in g.edges if t == matmul) == ["Placeholder", "Placeholder"]
    assert {"MatMul", "Tanh", "Sum"} <= set(g.nodes)
    assert max(g.depths()) == 4  # placeholder -> MatMul -> Tanh -> Sum -> Identity


# --- the two tracks' records --------------------------------------------------------------


def test_tracks_record_the_same_figures():
    pt, tf = _records("pytorch"), _records("tensorflow")
    names = {"f_value", "f_compute_ops", "g_outputs", "side_effect_runs", "f_graph_depth"}
    assert names <= set(pt) and names <= set(tf)
    # float64 inputs, the same three operations: agreement to rounding only
    assert pt["f_value"] == pytest.approx(tf["f_value"], rel=1e-12)
    assert pt["f_compute_ops"] == tf["f_compute_ops"] == ["matmul", "sum", "tanh"]
    assert pt["g_outputs"] == tf["g_outputs"]
    assert pt["side_effect_runs"] == tf["side_effect_runs"] == 1
    assert pt["f_graph_depth"] == tf["f_graph_depth"]


def test_f_value_direct_in_both_frameworks():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    x = np.arange(6.0).reshape(2, 3) / 10
    w = np.full((3, 2), 0.5)
    expected = np.tanh(x @ w).sum()
    via_torch = torch.tanh(torch.from_numpy(x) @ torch.from_numpy(w)).sum().item()
    via_tf = float(tf.reduce_sum(tf.tanh(tf.constant(x) @ tf.constant(w))))
    assert via_torch == pytest.approx(expected, rel=1e-12)
    assert via_tf == pytest.approx(expected, rel=1e-12)
    assert _records("pytorch")["f_value"] == pytest.approx(expected, rel=1e-11)


# --- the exercise checkers ------------------------------------------------------------------


def _stub(*args, **kwargs):
    raise NotImplementedError


def _status(exercise, answer):
    result = check(f"{CONCEPT}.{exercise}", answer)
    return result.status, result.message


def test_count_ops_checkers():
    pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    from collections import Counter

    fx = pytest.importorskip("torch.fx")

    def right_torch(fn):
        nodes = fx.symbolic_trace(fn).graph.nodes
        kept = [n for n in nodes if n.op in ("call_function", "call_method")]
        return dict(Counter(getattr(n.target, "__name__", str(n.target)) for n in kept))

    def wrong_torch(fn):  # counts placeholders and the output too
        return dict(Counter(n.name for n in fx.symbolic_trace(fn).graph.nodes))

    def right_tf(fn, *specs):
        ops = tf.function(fn).get_concrete_function(*specs).graph.get_operations()
        return dict(Counter(op.type for op in ops))

    def wrong_tf(fn, *specs):  # forgets the placeholders
        ops = tf.function(fn).get_concrete_function(*specs).graph.get_operations()
        return dict(Counter(op.type for op in ops if op.type != "Placeholder"))

    for track, right, wrong in (
        ("pytorch", right_torch, wrong_torch),
        ("tensorflow", right_tf, wrong_tf),
    ):
        assert _status(f"{track}.count_ops", right)[0] == "passed"
        assert _status(f"{track}.count_ops", _stub)[0] == "not solved"
        status, message = _status(f"{track}.count_ops", wrong)
        assert status == "wrong" and "expected" in message and "got" in message


def test_find_inputs_checkers():
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")

    def right_torch(result):
        found, seen, stack = [], set(), [result.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if hasattr(node, "variable"):
                found.append(node.variable)
            stack.extend(c for c, _ in node.next_functions)
        return found

    def wrong_torch(result):  # no 'seen' set: a leaf used twice is returned twice
        found, stack = [], [result.grad_fn]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if hasattr(node, "variable"):
                found.append(node.variable)
            stack.extend(c for c, _ in node.next_functions)
        return found

    def right_tf(concrete):
        return [
            op.name
            for op in concrete.graph.get_operations()
            if op.type == "Placeholder" and _reaches(op, concrete)
        ]

    def wrong_tf(concrete):  # every placeholder, whether the output uses it or not
        return [op.name for op in concrete.graph.get_operations() if op.type == "Placeholder"]

    for track, right, wrong in (
        ("pytorch", right_torch, wrong_torch),
        ("tensorflow", right_tf, wrong_tf),
    ):
        assert _status(f"{track}.find_inputs", right)[0] == "passed"
        assert _status(f"{track}.find_inputs", _stub)[0] == "not solved"
        status, message = _status(f"{track}.find_inputs", wrong)
        assert status == "wrong" and "expected" in message


def _reaches(placeholder, concrete):
    stack, seen = [t.op for t in concrete.outputs], set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op is placeholder:
            return True
        stack.extend(t.op for t in op.inputs)
    return False


def test_count_calls_checkers():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")

    def right_torch():
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

            def forward(self, x):
                self.calls.add_(1)
                return x * x

        return M()

    def wrong_torch():  # a Python int: the captured graph never updates it
        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
                self.n = 0

            def forward(self, x):
                self.n += 1
                self.calls.fill_(self.n)  # a constant baked in at trace time
                return x * x

        return M()

    def right_tf():
        calls = tf.Variable(0, dtype=tf.int64)

        @tf.function
        def square(x):
            calls.assign_add(1)
            return x * x

        return square, calls

    def wrong_tf():
        calls, box = tf.Variable(0, dtype=tf.int64), [0]

        @tf.function
        def square(x):
            box[0] += 1
            calls.assign(box[0])  # the Python count, frozen at trace time
            return x * x

        return square, calls

    for track, right, wrong in (
        ("pytorch", right_torch, wrong_torch),
        ("tensorflow", right_tf, wrong_tf),
    ):
        assert _status(f"{track}.count_calls", right)[0] == "passed"
        assert _status(f"{track}.count_calls", _stub)[0] == "not solved"
        status, message = _status(f"{track}.count_calls", wrong)
        assert status == "wrong" and "after 3 calls" in message, message

"""One small description of a computation graph, extracted from either framework, and drawn.

Each extractor returns a :class:`Graph`: a list of node labels (ids are positions in that
list) and a list of ``(source, target)`` edges in the direction data flows. The same
:func:`draw` then pictures a PyTorch autograd graph, a ``torch.fx`` / ``torch.export`` graph
or a TensorFlow ``tf.function`` graph with matplotlib alone (no graphviz binary).

Nothing here imports a framework at module level: each extractor works on the object it is
given.
"""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Graph:
    """Nodes (labels; a node's id is its index) and edges ``(source id, target id)``."""

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    title: str = ""

    def counts(self):
        """Return ``{label: how many nodes carry it}``, sorted by label."""
        return dict(sorted(Counter(self.nodes).items()))

    def sources(self):
        """Return the ids of nodes with no incoming edge (inputs, leaves, constants)."""
        targets = {t for _, t in self.edges}
        return [i for i in range(len(self.nodes)) if i not in targets]

    def depths(self):
        """Return each node's depth: the length of the longest path reaching it from a source."""
        preds = {i: [] for i in range(len(self.nodes))}
        for s, t in self.edges:
            preds[t].append(s)
        depth = {}

        def visit(i, seen=()):
            if i not in depth:
                if i in seen:
                    raise ValueError("the graph has a cycle")
                depth[i] = 1 + max((visit(p, (*seen, i)) for p in preds[i]), default=-1)
            return depth[i]

        return [visit(i) for i in range(len(self.nodes))]

    def __str__(self):
        lines = [f"{self.title or 'graph'}: {len(self.nodes)} nodes, {len(self.edges)} edges"]
        for i, label in enumerate(self.nodes):
            inputs = [self.nodes[s] for s, t in self.edges if t == i]
            lines.append(f"  {i:2d} {label}" + (f"  <- {', '.join(inputs)}" if inputs else ""))
        return "\n".join(lines)


def from_autograd(tensor, title="autograd graph"):
    """Return the :class:`Graph` that PyTorch's autograd recorded to compute ``tensor``.

    Walks ``tensor.grad_fn`` and each node's ``next_functions`` (depth first, so the order is
    stable). Nodes are the backward functions' class names (``MulBackward0``, ...); a leaf
    tensor that requires grad appears as ``AccumulateGrad``. Edges point from input to output,
    the direction of the forward computation.
    """
    if tensor.grad_fn is None:
        raise ValueError("this tensor has no grad_fn: it is a leaf, or no input requires grad")
    graph, index = Graph(title=title), {}

    def visit(fn):
        key = id(fn)
        if key not in index:
            index[key] = len(graph.nodes)
            graph.nodes.append(type(fn).__name__)
            for child, _ in fn.next_functions:
                if child is not None:
                    graph.edges.append((visit(child), index[key]))
        return index[key]

    visit(tensor.grad_fn)
    return graph


def _fx_label(node):
    if node.op in ("placeholder", "output"):
        return f"{node.op}:{node.name}"
    target = getattr(node.target, "__name__", str(node.target))
    name = str(node.target) if "aten." in str(node.target) else target
    return name.replace("aten.", "").replace(".default", "").replace(".Tensor", "")


def from_fx(captured, title="fx graph"):
    """Return the :class:`Graph` of a ``torch.fx`` GraphModule, ``fx.Graph`` or ExportedProgram.

    Nodes follow the graph's own order. Labels: ``placeholder:x`` for inputs,
    ``output:output`` for the result, and the operation's name otherwise (``matmul``,
    ``tanh``, ``sum``; ATen overload suffixes such as ``.default`` are dropped).
    """
    fx_graph = getattr(captured, "graph", captured)
    nodes = list(fx_graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    graph = Graph([_fx_label(n) for n in nodes], title=title)
    for node in nodes:
        for source in node.all_input_nodes:
            graph.edges.append((index[source], index[node]))
    return graph


def from_tf(function, title="tf.function graph"):
    """Return the :class:`Graph` of a TensorFlow ConcreteFunction (or a ``tf.Graph``).

    Nodes are the graph's operations in creation order, labelled by op type (``MatMul``,
    ``Placeholder``, ...); edges follow each op's data inputs (``op.inputs``).
    """
    tf_graph = getattr(function, "graph", function)
    ops = tf_graph.get_operations()
    index = {op.name: i for i, op in enumerate(ops)}
    graph = Graph([op.type for op in ops], title=title)
    for op in ops:
        for tensor in op.inputs:
            graph.edges.append((index[tensor.op.name], index[op.name]))
    return graph


def layout(graph):
    """Return ``{node id: (x, y)}``: one row per depth (top to bottom), nodes spread in a row."""
    rows = {}
    for i, d in enumerate(graph.depths()):
        rows.setdefault(d, []).append(i)
    pos = {}
    for d, members in rows.items():
        for k, i in enumerate(members):
            pos[i] = (k - (len(members) - 1) / 2, -d)
    return pos


def draw(graph, ax=None):
    """Draw ``graph`` with matplotlib, in layers by depth; return the Axes."""
    import matplotlib.pyplot as plt

    pos = layout(graph)
    if ax is None:
        width = max(Counter(y for _, y in pos.values()).values(), default=1)
        _, ax = plt.subplots(figsize=(max(3, 2.2 * width), 0.9 * (1 + len(set(graph.depths())))))
    for s, t in graph.edges:
        ax.annotate(
            "",
            xy=pos[t],
            xytext=pos[s],
            arrowprops={"arrowstyle": "->", "color": "0.4", "shrinkA": 12, "shrinkB": 12},
        )
    for i, (x, y) in pos.items():
        ax.text(
            x,
            y,
            graph.nodes[i],
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "#e8f0fe", "edgecolor": "#4a6fa5"},
        )
    xs = [x for x, _ in pos.values()] or [0]
    ys = [y for _, y in pos.values()] or [0]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_title(graph.title, fontsize=10)
    ax.axis("off")
    return ax

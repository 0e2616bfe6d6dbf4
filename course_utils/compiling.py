"""Helpers for 04_eager_vs_compiled: counting compilations, first-call vs steady-state timing,
break-even arithmetic, and the same MLP in both frameworks.

Frameworks are imported inside the functions that need them, never at module import.
"""

import math
import time

from .bench import benchmark, synchronizer


class CountingBackend:
    """A ``torch.compile`` backend that counts the graphs Dynamo hands it and runs them eagerly.

    ``torch.compile(fn, backend=counter)`` then ``counter.graphs`` is the number of graphs
    compiled so far (one per compilation or recompilation of each graph piece) and
    ``counter.runs`` the number of calls that ran one of them (a call that ran eagerly instead
    does not count). Cheap: no
    code generation, so it suits lessons about tracing rather than speed.
    """

    def __init__(self):
        self.graphs = 0
        self.runs = 0  # calls that ran one of the compiled graphs
        self.ops = []

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        self.ops.append(sum(1 for node in gm.graph.nodes if node.op == "call_function"))

        def run(*args):
            self.runs += 1
            return gm.forward(*args)

        return run


def explain_summary(explanation, lines=1):
    """Return ``{graph_count, graph_break_count, reasons}`` from ``torch._dynamo.explain(...)(...)``.

    ``reasons`` keeps the first ``lines`` line(s) of each break reason, which are stable text
    (the rest holds hints and links that change between PyTorch versions).
    """
    reasons = []
    for brk in explanation.break_reasons:
        text = str(getattr(brk, "reason", brk)).strip().splitlines()
        reasons.append(" ".join(line.strip() for line in text[:lines]))
    return {
        "graph_count": explanation.graph_count,
        "graph_break_count": explanation.graph_break_count,
        "reasons": reasons,
    }


def first_call_and_steady(fn, *, device="cpu", warmup=3, repeats=20, label=None):
    """Time the first call of ``fn()`` (tracing/compiling included), then its steady state.

    Returns ``(first_call_s, result)`` where ``result`` is the
    :class:`~course_utils.bench.BenchResult` of the calls after the first one.
    """
    sync = synchronizer(device)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    return first, benchmark(fn, device=device, warmup=warmup, repeats=repeats, label=label)


def break_even_steps(first_call_s, eager_step_s, compiled_step_s):
    """Return the smallest number of steps ``n >= 1`` for which compiling is faster, or None.

    Running ``n`` steps costs ``n * eager_step_s`` eagerly and
    ``first_call_s + (n - 1) * compiled_step_s`` compiled (the first call compiles and runs
    one step). The answer is the first ``n`` where the compiled total is strictly smaller
    (so it agrees with :func:`compile_pays`). None means the compiled step is not faster, so
    compiling never pays in the long run.
    """
    if compiled_step_s >= eager_step_s:
        return None
    n = max(1, math.floor((first_call_s - compiled_step_s) / (eager_step_s - compiled_step_s)) + 1)
    # settle floating-point ties the way compile_pays() does, so the two always agree
    while not compile_pays(first_call_s, eager_step_s, compiled_step_s, n):
        n += 1
    while n > 1 and compile_pays(first_call_s, eager_step_s, compiled_step_s, n - 1):
        n -= 1
    return n


def compile_pays(first_call_s, eager_step_s, compiled_step_s, steps):
    """Return True when ``steps`` compiled steps (first call included) take less time than eager."""
    compiled = first_call_s + (steps - 1) * compiled_step_s
    return compiled < steps * eager_step_s


def torch_mlp(d_in, hidden, d_out=10, depth=2, seed=0):
    """Return a PyTorch MLP: ``depth`` hidden Linear+ReLU layers of width ``hidden``, then a head."""
    import torch

    torch.manual_seed(seed)
    layers, width = [], d_in
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    layers.append(torch.nn.Linear(width, d_out))
    return torch.nn.Sequential(*layers)


def keras_mlp(d_in, hidden, d_out=10, depth=2, seed=0):
    """Return the same MLP as :func:`torch_mlp` as a built Keras ``Sequential`` model."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((d_in,))]
        + [keras.layers.Dense(hidden, activation="relu") for _ in range(depth)]
        + [keras.layers.Dense(d_out)]
    )
    return model


def torch_mlp_lean(model):
    """Return ``f(x)`` computing :func:`torch_mlp`'s forward pass with bare ``torch`` ops.

    The same weights, no ``nn.Module`` calls: a lean eager baseline beside ``model(x)``.
    """
    import torch

    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    params = [(layer.weight, layer.bias) for layer in linears]

    def forward(x):
        for weight, bias in params[:-1]:
            x = torch.relu(torch.addmm(bias, x, weight.t()))
        weight, bias = params[-1]
        return torch.addmm(bias, x, weight.t())

    return forward


def keras_mlp_lean(model):
    """Return ``f(x)`` computing :func:`keras_mlp`'s forward pass with bare ``tf`` ops.

    The same weights, no Keras ``Layer.__call__`` machinery: a lean eager baseline beside
    ``model(x)``.
    """
    import tensorflow as tf

    params = [(layer.kernel, layer.bias) for layer in model.layers]

    def forward(x):
        for kernel, bias in params[:-1]:
            x = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, kernel), bias))
        kernel, bias = params[-1]
        return tf.nn.bias_add(tf.matmul(x, kernel), bias)

    return forward


GRAPH_PLUMBING = {"Const", "Identity", "NoOp", "_Arg", "_Retval", "ReadVariableOp", "Placeholder"}


def tf_graph_ops(fn, *args):
    """Run the ``tf.function`` ``fn(*args)`` once and return the operations of its graph.

    Returns ``{"traced": [...], "optimized": [...], "kernels": [...]}``: the op types of the
    traced graph, of the graph after Grappler's optimisations, and of the graph the runtime
    actually ran (after device placement, where oneDNN may swap in its own kernels), with the
    plumbing ops (constants, identities, arguments, variable reads) left out. Uses the run
    metadata TensorFlow collects for its profiler.
    """
    from tensorflow.python.eager import context  # the run-metadata switch is not public API

    ctx = context.context()
    ctx.enable_graph_collection()
    ctx.enable_run_metadata()
    try:
        fn(*args)
        meta = ctx.export_run_metadata()
    finally:
        ctx.disable_run_metadata()
        ctx.disable_graph_collection()
    graph = meta.function_graphs[-1]

    def ops(graph_def):
        return [n.op for n in graph_def.node if n.op not in GRAPH_PLUMBING]

    return {
        "traced": ops(graph.pre_optimization_graph),
        "optimized": ops(graph.post_optimization_graph),
        "kernels": [op for part in graph.partition_graphs for op in ops(part)],
    }


def speed_verdict(candidate, baseline):
    """Return ``"faster"``, ``"slower"`` or a no-clear-difference verdict for ``candidate``.

    Lesson 03's rule (:func:`course_utils.offload.speed_verdict`): one of two
    :class:`~course_utils.bench.BenchResult` is called faster only when the middle halves of
    their repeats (their interquartile ranges) do not overlap.
    """
    from .offload import speed_verdict as iqr_verdict

    return iqr_verdict(candidate, baseline)


def timing_lines(results, baseline="eager"):
    """Return a printable table of ``{label: (first_call_s, BenchResult)}``, one line a variant.

    Each line holds the first call, the median step and its IQR, the ratio of medians against
    ``baseline`` (above 1: faster) and :func:`speed_verdict` against it.
    """
    from .bench import fmt_seconds

    base = results[baseline][1]
    lines = [
        f"  {'variant':<16}{'first call':>11}{'median step':>12}{'IQR':>9}"
        f"{'eager/this':>11}  verdict against {baseline} (IQR overlap rule)"
    ]
    for label, (first, res) in results.items():
        verdict = "(baseline)" if label == baseline else speed_verdict(res, base)
        lines.append(
            f"  {label:<16}{fmt_seconds(first):>11}{fmt_seconds(res.median):>12}"
            f"{fmt_seconds(res.iqr):>9}{base.median / res.median:>10.2f}x  {verdict}"
        )
    return lines

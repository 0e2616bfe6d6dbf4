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
    compiled so far (one per compilation or recompilation of each graph piece). Cheap: no
    code generation, so it suits lessons about tracing rather than speed.
    """

    def __init__(self):
        self.graphs = 0
        self.ops = []

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        self.ops.append(sum(1 for node in gm.graph.nodes if node.op == "call_function"))
        return gm.forward


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

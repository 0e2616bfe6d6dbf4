"""The claims lab (09_claims_lab): the thirteen popular claims, the rules that decide them, and
verdict functions that compute a verdict from measured figures.

Nothing here imports a framework. The measurements come from the harness
(:mod:`course_utils.claims_worker`), which runs each framework's side of the experiments
(:mod:`course_utils.claims_torch`, :mod:`course_utils.claims_tf`) in a fresh process and returns
one JSON-ready dict per framework::

    {"framework": "pytorch" | "tensorflow",
     "setup": {"version", "threads", "device", ...},
     "memory": {mode: MEMORY},                      # C5, C6
     "timing": {"small": {mode: TIMING}, "large": {mode: TIMING}},   # C3, C4 (and C9's step row)
     "accuracy": {"seeds", "test_accuracy", "n_test", "epochs"},     # C7
     "ops": {"cpu": {op: {"times"}}, "gpu": {op: {"times"}} | None},  # C9
     "demos": {"c1": ..., "c2": ..., "c8": ..., "c11": ...}}         # C1, C2, C8, C11

    MEMORY = {"runtime", "first_step_delta", "steady_delta", "train_peak", "train_delta"}  (MiB),
             plus "accelerator_peak" (MiB or None), "peak_was_reset", "parameters", "steps"
    TIMING = {"first_s": seconds of the first call, "times": [seconds of each later step]}

Modes: PyTorch ``"eager"`` and ``"compiled"`` (``torch.compile``); TensorFlow ``"eager"``,
``"graph"`` (``tf.function``) and ``"xla"`` (``tf.function(jit_compile=True)``).
:data:`DEFAULT_MODE` is how each framework trains when nothing is asked for (a PyTorch loop runs
eagerly; Keras ``fit`` runs a ``tf.function``).

Every verdict function returns a :class:`Verdict`: an outcome (:data:`OUTCOMES`), the reason with
the numbers, and the rule it applied. C10 and C12 are decided from the figures that the
deployment (06) and distributed (07) lessons record; :data:`UPSTREAM` names those records and
:func:`upstream` reads them.
"""

import contextlib
import difflib
import functools
import inspect
import io
import json
import os
import statistics
import sys
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_MEASURABLE = "not measurable here"
NOT_MEASURED = "not measured yet"
OUTCOMES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED)
FRAMEWORKS = ("pytorch", "tensorflow")
NAMES = {"pytorch": "PyTorch", "tensorflow": "TensorFlow"}
MODES = {"pytorch": ("eager", "compiled"), "tensorflow": ("eager", "graph", "xla")}
DEFAULT_MODE = {"pytorch": "eager", "tensorflow": "graph"}
GRAPH_MODES = {"pytorch": ("compiled",), "tensorflow": ("graph", "xla")}


# ---------------------------------------------------------------- the claims


@dataclass(frozen=True)
class Claim:
    """One claim: ``text`` as articles write it, ``why`` it might be true, ``title`` for tables."""

    id: str
    title: str
    text: str
    why: str


CLAIMS = {
    c.id: c
    for c in (
        Claim(
            "C1",
            "define-by-run vs static graph",
            "PyTorch builds the graph as the code runs (define-by-run); TensorFlow historically "
            "defined a static graph first, and TF 2.x eager execution closed most of that gap",
            "PyTorch records each operation as Python executes it; TensorFlow 1.x built a graph "
            "and ran it in a Session; TensorFlow 2.x runs eagerly unless asked for a graph.",
        ),
        Claim(
            "C2",
            "debugging inside the model",
            "Dynamic graphs make debugging easier: ordinary Python debugging and printing work "
            "inside the model",
            "When the model runs as Python, print and pdb see real tensors with values; a traced "
            "graph runs without Python, so they see placeholders or nothing.",
        ),
        Claim(
            "C3",
            "small models train faster in PyTorch",
            "For small models PyTorch can train faster, because eager execution has less overhead "
            "than tracing/compiling",
            "A small step is mostly fixed overhead; tracing or compiling costs time up front that "
            "a short run may never earn back.",
        ),
        Claim(
            "C4",
            "large models: tf.function and XLA are faster",
            "For large models, TensorFlow's graph mode (tf.function) and XLA give better speed "
            "and GPU use",
            "A whole-step graph lets the runtime fuse operations and plan memory; XLA compiles "
            "the step into fused kernels.",
        ),
        Claim(
            "C5",
            "TensorFlow needs less training memory",
            "TensorFlow uses less memory in training; one widely quoted benchmark: about 1.7 GB "
            "for TensorFlow vs about 3.5 GB for PyTorch on the same model",
            "A planned graph can reuse buffers; PyTorch's caching allocator keeps freed blocks.",
        ),
        Claim(
            "C6",
            "graphs and fragmentation explain it",
            "Static-graph optimisation and less fragmentation explain that memory difference",
            "If graph planning saves memory, a framework's graph mode should train in less "
            "memory than its own eager mode.",
        ),
        Claim(
            "C7",
            "same accuracy in both",
            "Same architecture, data and hyperparameters give practically the same accuracy in "
            "both",
            "The mathematics is the same; only initialisation, data order and rounding differ, "
            "and the course removes the first two.",
        ),
        Claim(
            "C8",
            "few code changes to use a GPU",
            "PyTorch offloads to a GPU with minimal code changes",
            "Moving a model and its batches with .to(device) is all a PyTorch loop needs.",
        ),
        Claim(
            "C9",
            "CPU and GPU speed",
            "PyTorch may be faster on GPUs, TensorFlow sometimes faster on CPUs",
            "The frameworks call different kernel libraries (oneDNN/MKL, Eigen, cuDNN) whose "
            "speed differs by operation and machine.",
        ),
        Claim(
            "C10",
            "broader deployment for TensorFlow",
            "TensorFlow's deployment story (SavedModel/Serving, Lite, JS) is broader; PyTorch "
            "has TorchScript and now torch.export",
            "TensorFlow has long shipped Serving, Lite and TF.js; PyTorch's export and edge "
            "routes (torch.export, ExecuTorch) are younger.",
        ),
        Claim(
            "C11",
            "TorchScript bridges eager and graph",
            "TorchScript gives an easy transition between eager mode and graph mode",
            "torch.jit.script compiles an eager model's Python into a graph without rewriting "
            "it, as long as the code stays in TorchScript's subset.",
        ),
        Claim(
            "C12",
            "distributed training",
            "TensorFlow is built for distributed training across CPUs, GPUs and TPUs; multi-GPU "
            "is generally considered easier to set up in PyTorch",
            "tf.distribute strategies cover every device kind; DistributedDataParallel is a thin "
            "wrapper around an ordinary training loop.",
        ),
        Claim(
            "C13",
            "more pretrained models for PyTorch",
            "Far more pretrained models are published for PyTorch than for TensorFlow (one "
            "count: ~85% of a major model hub's models PyTorch-only, ~8% TensorFlow-only)",
            "Most research code is written in PyTorch, and hubs mirror what authors publish.",
        ),
    )
}

# The figure C13 quotes, as a claim (shares of a hub's models).
C13_QUOTED = {"pytorch_only": 0.85, "tensorflow_only": 0.08}
# The figures C5 quotes, in GB.
C5_QUOTED = {"tensorflow": 1.7, "pytorch": 3.5}


# ---------------------------------------------------------------- the rules

RUN_STEPS = 500  # C3: a short training run (a few epochs of a small data set), first call included
MEMORY_RTOL, MEMORY_ATOL_MIB = 0.10, 8.0  # C5, C6: a memory difference must exceed both
MINIMAL_LINES, MANY_LINES = 5, 10  # C8: "minimal code changes" is at most 5 changed lines
FAR_MORE_RATIO, MIN_HUB_SAMPLE = 5.0, 100  # C13: "far more" is at least 5 times as many
DISTRIBUTED_MARGIN_LINES = 3  # C12: "easier" needs at least 3 fewer changed lines
DISTRIBUTED_ATOL = 1e-5  # C12: 07's parity tolerance, distributed vs one process (max |diff|)

BUSY_RULE = (
    "; inconclusive whenever other programs kept the machine busy just before timing (more than "
    "a quarter of the CPUs' time in use, or a 1-minute load average above half the CPUs where "
    "that is all the system says)"
)
RULES = {
    "C1": "supported when PyTorch's recorded graph follows the data, TensorFlow runs eagerly by "
    "default with its recorded operations following the data too, and tf.function still builds "
    "one static graph holding the loop",
    "C2": "supported when print and a breakpoint see values on every call in both frameworks' "
    "eager mode, and a graph mode hides them; contradicted when neither eager mode shows them, "
    "or no graph mode hides them",
    "C3": f"small model, a run of {RUN_STEPS} steps (first call + {RUN_STEPS - 1} steady steps), "
    "each framework in its fastest mode: a difference counts only when the totals' interquartile "
    "bands do not overlap" + BUSY_RULE,
    "C4": "large model, steady-state step: TensorFlow's faster of graph/XLA against PyTorch's "
    "faster of eager/compiled; a difference counts only when the interquartile ranges do not "
    "overlap" + BUSY_RULE,
    "C5": f"each framework's default training mode in a fresh process; a difference counts when "
    f"it exceeds {MEMORY_RTOL:.0%} of the smaller figure and {MEMORY_ATOL_MIB:g} MiB, for the "
    "allocator peak on a GPU, else for both the process peak and what training added",
    "C6": "supported when TensorFlow's graph mode adds less memory per training step than its "
    f"eager mode, by more than {MEMORY_RTOL:.0%} and {MEMORY_ATOL_MIB:g} MiB; contradicted when "
    "it adds more by as much; inconclusive in between",
    "C7": "supported when the two frameworks' mean test accuracies differ by no more than the "
    "seed-to-seed spread (the larger standard deviation over seeds, at least one test example)",
    "C8": f"supported when moving the PyTorch training code to a device changes at most "
    f"{MINIMAL_LINES} lines; contradicted above {MANY_LINES}",
    "C9": "CPU half: supported when TensorFlow is clearly faster (interquartile ranges apart) on "
    "at least one operation of the table; GPU half: the same for PyTorch on a GPU" + BUSY_RULE,
    "C10": "supported when TensorFlow reached a deployment target that PyTorch did not, and not "
    "the other way round; contradicted when PyTorch reached at least every target TensorFlow did",
    "C11": "contradicted when TorchScript warns that it is deprecated and rejects ordinary "
    "Python that torch.compile runs unchanged; supported when it is not deprecated and accepts "
    "every example",
    "C12": f"multi-GPU half: supported when PyTorch's distributed code changes at least "
    f"{DISTRIBUTED_MARGIN_LINES} fewer lines than TensorFlow's, both runs matching one process; "
    "contradicted when TensorFlow's changes at least that many fewer",
    "C13": f"supported when PyTorch-only models outnumber TensorFlow-only ones at least "
    f"{FAR_MORE_RATIO:g} to 1 in a sample of at least {MIN_HUB_SAMPLE} models; contradicted below "
    "1 to 1",
}


# ---------------------------------------------------------------- settings and shared inputs


def mlp_spec(d_in, hidden, depth, d_out=10):
    """Return the layer spec (as :func:`course_utils.training.init_weights` reads it) of the MLP
    :func:`course_utils.compiling.torch_mlp` builds: ``depth`` hidden layers of width ``hidden``."""
    spec = [("dense", d_in, hidden)]
    spec += [("dense", hidden, hidden) for _ in range(depth - 1)]
    return spec + [("dense", hidden, d_out)]


def parameter_count(size):
    """Return the number of parameters of the MLP described by ``size`` (d_in, hidden, depth)."""
    spec = mlp_spec(size["d_in"], size["hidden"], size["depth"])
    return sum(n_in * n_out + n_out for _, n_in, n_out in spec)


ACCURACY_SIZE = {"d_in": 64, "hidden": 64, "depth": 1}  # 05's MLP (training.MLP_SPEC)


def settings(quick=True, seed=0, device="auto", threads=None):
    """Return the plan both frameworks are measured with (a dict; the same for both).

    Quick mode keeps the lesson short on a 2-core CPU; full mode uses a model with tens of
    millions of parameters for the memory and large-model figures, more seeds and more repeats
    (fewer for the large model, whose steps take long on a CPU). ``threads=None`` means one per
    CPU core; both frameworks get the same number. Timing entries take ``warmup`` untimed steps,
    then ``repeats`` timed ones.
    """
    threads = int(threads or os.cpu_count() or 1)
    large = (
        {"d_in": 64, "hidden": 1024, "depth": 2, "warmup": 2, "repeats": 10}
        if quick
        else {"d_in": 64, "hidden": 4096, "depth": 3, "warmup": 2, "repeats": 10}
    )
    return {
        "quick": bool(quick),
        "seed": int(seed),
        "device": str(device),
        "threads": threads,
        "lr": 0.01,
        "small": {
            "d_in": 64,
            "hidden": 64,
            "depth": 2,
            "batch": 32,
            "warmup": 2 if quick else 5,
            "repeats": 10 if quick else 40,
        },
        "large": {**large, "batch": 256},
        "warmup": 2 if quick else 3,  # operation timings (C9)
        "repeats": 10 if quick else 30,
        "memory_steps": 4 if quick else 8,
        "seeds": [seed + i for i in range(3 if quick else 6)],
        "epochs": 2 if quick else 5,
        "accuracy_batch": 32,
        "ops": dict(OP_SHAPES),
        "tf_onednn": None,  # None: TensorFlow's own default for its oneDNN custom operations
    }


OP_SHAPES = {  # C9: the same operations, the same sizes, in both frameworks
    "matmul": {"n": 512},
    "conv2d": {"batch": 16, "size": 32, "channels": 32, "kernel": 3},
    "add_relu": {"n": 1 << 21},
    "sum": {"n": 1 << 21},
    "softmax": {"rows": 512, "cols": 1000},
}
OP_LABELS = {
    "matmul": "matmul 512x512",
    "conv2d": "conv 3x3, 32 channels, 16x32x32",
    "add_relu": "add + relu, 2M elements",
    "sum": "sum of 2M elements",
    "softmax": "softmax 512x1000",
}


def op_inputs(shapes=None, seed=0):
    """Return the NumPy float32 inputs of every operation in ``shapes`` (channels-last images,
    HWIO kernels: the Keras layouts; PyTorch transposes them to its own)."""
    shapes = shapes or OP_SHAPES
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    out = {}
    for name, s in shapes.items():
        if name == "matmul":
            out[name] = (normal(s["n"], s["n"]), normal(s["n"], s["n"]))
        elif name == "conv2d":
            c, k = s["channels"], s["kernel"]
            out[name] = (normal(s["batch"], s["size"], s["size"], c), normal(k, k, c, c))
        elif name in ("add_relu", "sum"):
            out[name] = (normal(s["n"]), normal(s["n"]))
        elif name == "softmax":
            out[name] = (normal(s["rows"], s["cols"]),)
        else:
            raise ValueError(f"unknown operation {name!r}")
    return out


# C2: a dense layer whose weights and input are exact in binary, so printed values are the same
# on every CPU. h = relu(x @ kernel + bias) = [1.25, 0.75, 0.25] for each of the two rows.
DEBUG_KERNEL = np.array(
    [[0.5, -0.25, 1.0], [0.25, 0.5, -1.0], [0.0, 0.25, 0.5], [0.5, 0.0, 0.25]], np.float32
)
DEBUG_BIAS = np.array([0.0, 0.25, -0.5], np.float32)
DEBUG_INPUT = np.ones((2, 4), np.float32)
DEBUG_H = np.maximum(DEBUG_INPUT @ DEBUG_KERNEL + DEBUG_BIAS, 0)
DEBUG_SUM = float(DEBUG_H.sum())  # what pdb's `p float(sum of h)` answers when it sees values


def debug_weights():
    """Return the C2 layer's weights as a one-layer list for ``training.load_torch/load_keras``."""
    from .training import Layer

    return [Layer("dense", DEBUG_KERNEL.copy(), DEBUG_BIAS.copy())]


# ---------------------------------------------------------------- demonstration helpers


PROMPT = "(Pdb) "


@contextlib.contextmanager
def scripted_breakpoints(commands):
    """Make every ``breakpoint()`` in the block open a real pdb session that reads ``commands``
    (a list of pdb commands; ``continue`` is added) instead of the keyboard.

    Yields the list that receives each session's transcript (pdb's output, prompts included).
    Restores the previous ``sys.breakpointhook`` afterwards.
    """
    import pdb

    transcripts = []

    def hook(*args, **kwargs):
        out = io.StringIO()
        script = io.StringIO("\n".join([*commands, "continue", ""]))
        session = pdb.Pdb(stdin=script, stdout=out, nosigint=True)  # IPython's debugger in Jupyter
        session.prompt = PROMPT  # the same prompt in both debuggers
        session.use_rawinput = False
        session.reset()
        session.interaction(sys._getframe(1), None)  # the frame that called breakpoint()
        transcripts.append(out.getvalue())

    previous = sys.breakpointhook
    sys.breakpointhook = hook
    try:
        yield transcripts
    finally:
        sys.breakpointhook = previous


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what native code writes to the process's standard error (file descriptor 2) to
    nowhere during the block: C++ warnings that name files on this machine, which a
    verdict does not need."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as nowhere:
            os.dup2(nowhere.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def pdb_answers(transcript):
    """Return pdb's answers in a transcript: the text after each ``(Pdb)`` prompt, stripped (the
    location lines, which name files on this machine, are left out)."""
    parts = transcript.split(PROMPT)[1:]
    return [p.strip() for p in parts if p.strip()]


def debug_session(call, calls, commands):
    """Call ``call()`` ``calls`` times with printing captured and breakpoints scripted; return
    what a person debugging would have seen, as counts::

        {"calls", "prints", "prints_with_values", "breakpoints", "breakpoints_with_values",
         "first_print": what the first print wrote, "first_answers": pdb's answers in the first session}

    A print "has values" when it shows the layer's first output value (1.25); a breakpoint "has
    values" when pdb's last answer is the sum of the layer's output (:data:`DEBUG_SUM`).
    """
    import warnings

    printed = io.StringIO()
    with (
        scripted_breakpoints(commands) as transcripts,
        contextlib.redirect_stdout(printed),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # graph-break notices: the counts below say it
        for _ in range(calls):
            call()
    blocks = _print_blocks(printed.getvalue())
    answers = [pdb_answers(t) for t in transcripts]
    return {
        "calls": calls,
        "prints": len(blocks),
        "prints_with_values": sum("1.25" in block for block in blocks),
        "breakpoints": len(transcripts),
        "breakpoints_with_values": sum(bool(a) and a[-1] == repr(DEBUG_SUM) for a in answers),
        "first_print": blocks[0] if blocks else None,
        "first_answers": answers[0] if answers else [],
    }


def _print_blocks(text):
    """Split captured output into the blocks that each ``print("h =", ...)`` wrote."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("h ="):
            current = [line]
            blocks.append(current)
        elif current is not None:
            current.append(line)
    return ["\n".join(b) for b in blocks]


def code_lines(fn):
    """Return the code lines of a function's body: no ``def`` line, docstring, comments or blank
    lines, and no indentation (so re-indenting a block is not counted as a change)."""
    import ast

    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source).body[0]
    skip = set(range(tree.lineno, tree.body[0].lineno))  # the def line (and its continuations)
    first = tree.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        skip |= set(range(first.lineno, first.end_lineno + 1))
    lines = []
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("  #")[0].strip()
        if number in skip or not code or code.startswith("#"):
            continue
        lines.append(code)
    return lines


def changed_lines(before, after):
    """Count the lines of code that change from function ``before`` to function ``after``.

    Both bodies are compared with :mod:`difflib` as :func:`code_lines` gives them. Returns
    ``{"before": n, "after": n, "changed": n, "diff": [unified diff lines]}``; ``changed`` counts
    an edited line once and an added or removed line once.
    """
    a, b = code_lines(before), code_lines(after)
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
    diff = difflib.unified_diff(a, b, before.__name__, after.__name__, n=0, lineterm="")
    return {"before": len(a), "after": len(b), "changed": changed, "diff": list(diff)}


def graph_size(grad_fn):
    """Return how many autograd nodes are reachable from ``grad_fn`` (a PyTorch graph's size)."""
    seen, stack = set(), [grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in getattr(node, "next_functions", ()))
    return len(seen)


# ---------------------------------------------------------------- figures from measurements


def quartiles(times):
    """Return ``(q1, median, q3)`` of a list of seconds (all three equal for one value)."""
    if len(times) < 2:
        return (times[0],) * 3
    q1, med, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return (q1, med, q3)


def bench_result(entry, label):
    """Return a :class:`course_utils.bench.BenchResult` from a ``TIMING`` or ops entry."""
    from .bench import BenchResult

    return BenchResult(label=label, times=list(entry["times"]), warmup=0, device="")


def run_total(entry, steps=RUN_STEPS):
    """Return ``(low, middle, high)`` seconds for ``steps`` steps of a ``TIMING`` entry: the first
    call plus ``steps - 1`` steady steps at the first quartile, the median and the third."""
    return tuple(entry["first_s"] + (steps - 1) * q for q in quartiles(entry["times"]))


def fastest(modes, key):
    """Return ``(mode, value)`` with the smallest ``key(entry)`` among ``modes`` ({mode: entry})."""
    mode = min(modes, key=lambda m: key(modes[m]))
    return mode, key(modes[mode])


def memory_difference(a, b, rtol=MEMORY_RTOL, atol=MEMORY_ATOL_MIB):
    """Return "lower", "higher" or "same": how ``a`` compares with ``b`` (MiB), where a
    difference counts only when it exceeds ``rtol`` of the smaller figure and ``atol`` MiB."""
    margin = max(rtol * min(abs(a), abs(b)), atol)
    if a < b - margin:
        return "lower"
    if a > b + margin:
        return "higher"
    return "same"


def fmt_time(seconds):
    """Format seconds like :func:`course_utils.bench.fmt_seconds`."""
    from .bench import fmt_seconds

    return fmt_seconds(seconds)


# ---------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """A claim's verdict: ``outcome`` (one of :data:`OUTCOMES`), the ``reason`` with the numbers,
    the ``rule`` applied, and short key ``figures`` per framework (text)."""

    claim: str
    outcome: str
    reason: str
    rule: str
    figures: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    def as_dict(self):
        return asdict(self)

    def __str__(self):
        return f"{self.claim} {CLAIMS[self.claim].title}: {self.outcome.upper()}. {self.reason}"


def _verdict(claim, outcome, reason, figures=None):
    return Verdict(claim, outcome, reason, RULES[claim], figures or {})


def c1_define_by_run(pt, tf):
    """C1 from the two frameworks' ``define_by_run()`` facts (see ``claims_torch``/``claims_tf``).

    ``pt``: {"graph_follows_data", "graph_nodes", "loop_steps", ...};
    ``tf``: {"eager_by_default", "graph_follows_data", "function_traces",
    "function_has_loop_op", "loop_steps", ...}.
    """
    dynamic = bool(pt["graph_follows_data"])
    eager = bool(tf["eager_by_default"] and tf["graph_follows_data"])
    static = tf["function_traces"] == 1 and bool(tf["function_has_loop_op"])
    figures = {
        "pytorch": f"graph nodes {pt['graph_nodes'][0]} vs {pt['graph_nodes'][1]} for two inputs",
        "tensorflow": f"eager {tf['eager_by_default']}; tf.function: {tf['function_traces']} "
        f"trace, loop op {tf['function_has_loop_op']}",
    }
    reason = (
        f"PyTorch's graph followed the data ({dynamic}); TensorFlow ran eagerly by default with "
        f"its operations following the data ({eager}); tf.function still built one static graph "
        f"with the loop inside ({static})."
    )
    if dynamic and eager and static:
        return _verdict("C1", SUPPORTED, reason, figures)
    if not dynamic or not eager:
        return _verdict("C1", CONTRADICTED, reason, figures)
    return _verdict("C1", INCONCLUSIVE, reason, figures)


def c2_debugging(pt, tf):
    """C2 from the two frameworks' ``debugging_inside()`` results: ``{mode: session}`` where a
    session is :func:`debug_session`'s dict (PyTorch modes eager/compiled, TensorFlow
    eager/graph)."""

    def sees(session):
        return (
            session["prints_with_values"] == session["calls"]
            and session["breakpoints_with_values"] == session["calls"]
        )

    eager_ok = {fw: sees(d["eager"]) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    hidden = [
        f"{NAMES[fw]} {mode}"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
        for mode in d
        if mode != "eager" and not sees(d[mode])
    ]

    def text(d):
        return "; ".join(
            f"{m}: {s['prints_with_values']}/{s['calls']} prints, "
            f"{s['breakpoints_with_values']}/{s['calls']} breakpoints with values"
            for m, s in d.items()
        )

    figures = {"pytorch": text(pt), "tensorflow": text(tf)}
    reason = (
        f"In eager mode print and pdb saw values on every call: PyTorch {eager_ok['pytorch']}, "
        f"TensorFlow {eager_ok['tensorflow']}; graph modes that hid them: "
        f"{', '.join(hidden) or 'none'}."
    )
    if all(eager_ok.values()) and hidden:
        return _verdict("C2", SUPPORTED, reason, figures)
    if not any(eager_ok.values()) or not hidden:
        return _verdict("C2", CONTRADICTED, reason, figures)
    return _verdict("C2", INCONCLUSIVE, reason, figures)  # eager mode showed values in one only


def _modes_text(modes, value):
    return ", ".join(f"{m} {value(e)}" for m, e in modes.items())


# Other programs' CPU use, as a share of the CPUs, above which timings are doubtful: measured
# directly (Linux), or read from the 1-minute load average, which also remembers the last minute.
BUSY_SHARE = {"cpu use": 0.25, "load average": 0.5}


def machine_busy(results):
    """Return why this run's timings cannot be trusted (a sentence), or None.

    Each timing process measures, for half a second before it imports its framework, how much
    CPU other programs use (``setup["load"][0]``, of kind ``setup["load_kind"]``: "cpu use" over
    that half second on Linux, else the 1-minute load average). The lowest of these is what other
    programs were asking of the CPU. Above :data:`BUSY_SHARE` of the CPUs the frameworks'
    threads had to share them, and not evenly: threads that wait for each other at a barrier
    after every parallel operation (PyTorch's OpenMP) lose far more than threads that take work
    from a queue (TensorFlow's), so the figures measure the machine's load as much as the
    frameworks.
    """
    starts, cpus, kind = [], None, "load average"
    for result in results.values():
        setup = result["setup"]
        load = (setup.get("load") or [None])[0]
        if load is not None and setup.get("cpus"):
            starts.append(load)
            cpus = setup["cpus"]
            kind = setup.get("load_kind") or "load average"
    if not starts:
        return None
    load, limit = min(starts), BUSY_SHARE[kind] * cpus
    if load <= limit:
        return None
    if kind == "cpu use":
        measured = f"other programs used {load:.1f} of {cpus} CPUs just before timing"
    else:
        measured = f"1-minute load average {load:.1f} on {cpus} CPUs before the lab added its own"
    return (
        f"The machine was busy while timing ({measured}, above {limit:g}): other programs' work "
        "is in these figures."
    )


def _timing_claim(verdict_function):
    """Give a verdict function that rests on timings a ``busy`` argument (None, or
    :func:`machine_busy`'s sentence): a supported or contradicted outcome then becomes
    inconclusive, and the reason says what the figures alone would have said."""

    @functools.wraps(verdict_function)
    def decide(*args, busy=None, **kwargs):
        verdict = verdict_function(*args, **kwargs)
        if busy and verdict.outcome in (SUPPORTED, CONTRADICTED):
            verdict.reason = f"{busy} The figures alone say {verdict.outcome}: {verdict.reason}"
            verdict.outcome = INCONCLUSIVE
        return verdict

    return decide


@_timing_claim
def c3_small_models(pt, tf, steps=RUN_STEPS):
    """C3 from the small model's ``TIMING`` entries of both frameworks (``{mode: TIMING}``):
    each framework's fastest mode for a run of ``steps`` steps, first call included."""

    def total(e):
        return run_total(e, steps)[1]

    pt_mode, _ = fastest(pt, total)
    tf_mode, _ = fastest(tf, total)
    pt_low, pt_mid, pt_high = run_total(pt[pt_mode], steps)
    tf_low, tf_mid, tf_high = run_total(tf[tf_mode], steps)
    figures = {
        "pytorch": f"step: {_modes_text(pt, lambda e: fmt_time(quartiles(e['times'])[1]))}",
        "tensorflow": f"step: {_modes_text(tf, lambda e: fmt_time(quartiles(e['times'])[1]))}",
    }
    reason = (
        f"{steps} steps take {fmt_time(pt_mid)} in PyTorch ({pt_mode}, band "
        f"{fmt_time(pt_low)}-{fmt_time(pt_high)}) and {fmt_time(tf_mid)} in TensorFlow "
        f"({tf_mode}, band {fmt_time(tf_low)}-{fmt_time(tf_high)})"
    )
    if pt_high < tf_low:
        return _verdict(
            "C3", SUPPORTED, reason + f": PyTorch {tf_mid / pt_mid:.2f}x faster.", figures
        )
    if pt_low > tf_high:
        return _verdict(
            "C3", CONTRADICTED, reason + f": TensorFlow {pt_mid / tf_mid:.2f}x faster.", figures
        )
    return _verdict("C3", INCONCLUSIVE, reason + ": the bands overlap.", figures)


@_timing_claim
def c4_large_models(pt, tf, accelerator=None):
    """C4 from the large model's ``TIMING`` entries (``{mode: TIMING}``), steady state.

    ``accelerator`` names the device the steps ran on (None: the CPU, where the claim's "GPU
    use" half cannot be measured).
    """
    from .offload import speed_verdict

    graph = {m: e for m, e in tf.items() if m in GRAPH_MODES["tensorflow"]}
    if not graph:
        return _verdict("C4", NOT_MEASURED, "TensorFlow's graph modes were not measured.")

    def median(e):
        return quartiles(e["times"])[1]

    tf_mode, tf_med = fastest(graph, median)
    pt_mode, pt_med = fastest(pt, median)
    said = speed_verdict(bench_result(graph[tf_mode], tf_mode), bench_result(pt[pt_mode], pt_mode))
    figures = {
        "pytorch": f"step: {_modes_text(pt, lambda e: fmt_time(median(e)))}",
        "tensorflow": f"step: {_modes_text(tf, lambda e: fmt_time(median(e)))}",
    }
    where = f"on {accelerator}" if accelerator else "on the CPU (GPU use not measurable here)"
    reason = (
        f"Steady step {where}: TensorFlow {tf_mode} {fmt_time(tf_med)}, PyTorch {pt_mode} "
        f"{fmt_time(pt_med)}"
    )
    if said == "faster":
        return _verdict(
            "C4", SUPPORTED, reason + f": TensorFlow {pt_med / tf_med:.2f}x faster.", figures
        )
    if said == "slower":
        return _verdict(
            "C4", CONTRADICTED, reason + f": PyTorch {tf_med / pt_med:.2f}x faster.", figures
        )
    return _verdict("C4", INCONCLUSIVE, reason + ": the spreads overlap.", figures)


def c5_training_memory(pt, tf):
    """C5 from each framework's ``MEMORY`` figures in its default training mode."""
    accel = pt.get("accelerator_peak") is not None and tf.get("accelerator_peak") is not None
    names = ["accelerator_peak"] if accel else ["train_peak", "train_delta"]
    label = {
        "accelerator_peak": "allocator peak",
        "train_peak": "process peak",
        "train_delta": "added by training",
    }
    said = {n: memory_difference(tf[n], pt[n]) for n in names}
    figures = {
        fw: ", ".join(f"{label[n]} {d[n]:.0f} MiB" for n in names)
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    parts = [
        f"{label[n]}: TensorFlow {tf[n]:.0f} MiB vs PyTorch {pt[n]:.0f} MiB ({said[n]})"
        for n in names
    ]
    ratio = pt[names[0]] / tf[names[0]] if tf[names[0]] else float("inf")
    quoted = C5_QUOTED["pytorch"] / C5_QUOTED["tensorflow"]
    reason = (
        "; ".join(parts)
        + f". PyTorch/TensorFlow ratio {ratio:.2f} (the quoted figures: {quoted:.2f})."
    )
    if all(s == "lower" for s in said.values()):
        return _verdict("C5", SUPPORTED, reason, figures)
    if all(s == "higher" for s in said.values()):
        return _verdict("C5", CONTRADICTED, reason, figures)
    return _verdict("C5", INCONCLUSIVE, reason, figures)


def c6_graph_memory(pt, tf):
    """C6 from the ``MEMORY`` figures of every mode (``{mode: MEMORY}``) of both frameworks:
    does a graph mode add less memory per training step than eager mode?"""
    if not {"eager", "graph"} <= set(tf):
        return _verdict(
            "C6", NOT_MEASURED, "TensorFlow's eager and graph memory were not both measured."
        )
    tf_said = memory_difference(tf["graph"]["steady_delta"], tf["eager"]["steady_delta"])
    pt_said = (
        memory_difference(pt["compiled"]["steady_delta"], pt["eager"]["steady_delta"])
        if {"eager", "compiled"} <= set(pt)
        else "not measured"
    )
    figures = {
        fw: ", ".join(f"{m} {e['steady_delta']:.0f} MiB" for m, e in d.items())
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    reason = (
        f"Memory added by steady training steps: TensorFlow graph {tf['graph']['steady_delta']:.0f} "
        f"vs eager {tf['eager']['steady_delta']:.0f} MiB ({tf_said}); PyTorch compiled vs eager: "
        f"{pt_said}. Fragmentation is not visible in these figures."
    )
    if tf_said == "lower":
        return _verdict("C6", SUPPORTED, reason, figures)
    if tf_said == "higher":
        return _verdict("C6", CONTRADICTED, reason, figures)
    return _verdict("C6", INCONCLUSIVE, reason, figures)


def c7_accuracy(pt, tf):
    """C7 from both frameworks' ``accuracy`` results (``{"seeds", "test_accuracy", "n_test"}``),
    trained from the same initial weights and batches for each seed."""
    a, b = pt["test_accuracy"], tf["test_accuracy"]
    if len(a) < 2 or len(a) != len(b):
        return _verdict(
            "C7", INCONCLUSIVE, "At least two seeds, the same in both, are needed for a spread."
        )
    one = 1 / pt["n_test"]
    spread = max(statistics.stdev(a), statistics.stdev(b))
    threshold = max(spread, one)
    diff = abs(statistics.mean(a) - statistics.mean(b))
    paired = max(abs(x - y) for x, y in zip(a, b, strict=True))
    figures = {
        fw: f"mean {statistics.mean(v):.4f}, sd {statistics.stdev(v):.4f} over {len(v)} seeds"
        for fw, v in (("pytorch", a), ("tensorflow", b))
    }
    reason = (
        f"Mean accuracies differ by {diff:.4f}; the seed-to-seed spread is {spread:.4f} (threshold "
        f"{threshold:.4f}); the largest difference for one seed is {paired:.4f} "
        f"({round(paired * pt['n_test'])} of {pt['n_test']} test examples)."
    )
    outcome = SUPPORTED if diff <= threshold + 1e-9 else CONTRADICTED  # 1e-9: float ties
    return _verdict("C7", outcome, reason, figures)


def c8_gpu_code(pt, tf):
    """C8 from both frameworks' ``gpu_code_change()`` facts: ``{"changed", "before", "device",
    "same_losses", ...}``, the lines changed from the CPU training function to the device one."""
    n = pt["changed"]
    figures = {
        fw: f"{d['changed']} of {d['before']} lines changed"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    ran = f"both versions ran on {pt['device']} with the same losses: {pt['same_losses']}"
    reason = (
        f"Moving PyTorch's training code to a device changed {n} of {pt['before']} lines "
        f"(TensorFlow, with explicit placement: {tf['changed']}); {ran}."
    )
    if not pt["same_losses"]:
        return _verdict("C8", INCONCLUSIVE, reason, figures)
    if n <= MINIMAL_LINES:
        return _verdict("C8", SUPPORTED, reason, figures)
    if n > MANY_LINES:
        return _verdict("C8", CONTRADICTED, reason, figures)
    return _verdict("C8", INCONCLUSIVE, reason, figures)


def op_comparison(pt_ops, tf_ops):
    """Return ``{op: "tensorflow" | "pytorch" | "neither"}``: which framework was clearly faster
    (interquartile ranges apart) on each operation both measured."""
    from .offload import speed_verdict

    out = {}
    for op in pt_ops:
        if op not in tf_ops:
            continue
        said = speed_verdict(bench_result(tf_ops[op], "tf"), bench_result(pt_ops[op], "torch"))
        out[op] = {"faster": "tensorflow", "slower": "pytorch"}.get(said, "neither")
    return out


@_timing_claim
def c9_speed(pt_cpu, tf_cpu, pt_gpu=None, tf_gpu=None):
    """C9 from the operation timings of both frameworks (``{op: {"times"}}``; the training step
    can be one of the rows), on the CPU and, when both were measured there, on a GPU."""
    cpu = op_comparison(pt_cpu, tf_cpu)
    tf_wins = [op for op, who in cpu.items() if who == "tensorflow"]
    pt_wins = [op for op, who in cpu.items() if who == "pytorch"]
    figures = {
        "pytorch": f"CPU: clearly faster on {len(pt_wins)} of {len(cpu)}",
        "tensorflow": f"CPU: clearly faster on {len(tf_wins)} of {len(cpu)}",
    }
    reason = (
        f"CPU: TensorFlow clearly faster on {len(tf_wins)} of {len(cpu)} rows "
        f"({', '.join(tf_wins) or 'none'}), PyTorch on {len(pt_wins)} "
        f"({', '.join(pt_wins) or 'none'}). "
    )
    if tf_wins:
        outcome = SUPPORTED
    elif pt_wins:
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    if pt_gpu and tf_gpu:
        gpu = op_comparison(pt_gpu, tf_gpu)
        gpu_pt = [op for op, who in gpu.items() if who == "pytorch"]
        gpu_tf = [op for op, who in gpu.items() if who == "tensorflow"]
        reason += (
            f"GPU: PyTorch clearly faster on {len(gpu_pt)} of {len(gpu)} rows, TensorFlow on "
            f"{len(gpu_tf)}."
        )
        gpu_outcome = SUPPORTED if gpu_pt else (CONTRADICTED if gpu_tf else INCONCLUSIVE)
        if gpu_outcome != outcome:
            outcome = INCONCLUSIVE
            reason += " The two halves disagree."
    else:
        reason += "GPU half: not measurable here (no GPU in both frameworks); the verdict is the CPU half."
    return _verdict("C9", outcome, reason, figures)


def c10_deployment(pt_rows, tf_rows):
    """C10 from the deployment targets each framework reached in 06 (:data:`UPSTREAM` ``C10``).

    Each argument is that track's ``deployment_targets`` record (rows of
    :mod:`course_utils.targets`: ``{"target", "status", "artifact", "evidence", "note"}``), or
    None when not recorded yet. The rule is 06's own, :func:`course_utils.targets.c10`: supported
    when TensorFlow reached a target that PyTorch did not and not the other way round.
    """
    from . import targets

    if pt_rows is None or tf_rows is None:
        missing = [
            NAMES[fw]
            for fw, rows in (("pytorch", pt_rows), ("tensorflow", tf_rows))
            if rows is None
        ]
        return _verdict(
            "C10", NOT_MEASURED, f"No deployment targets recorded yet for {', '.join(missing)}."
        )
    found = targets.c10(pt_rows, tf_rows)
    total = len(targets.TARGETS)
    figures = {fw: f"{found[fw]} of {total} targets reached" for fw in FRAMEWORKS}
    reason = (
        f"Reached: PyTorch {found['pytorch']}, TensorFlow {found['tensorflow']} of {total}; only "
        f"TensorFlow: {', '.join(found['only_tensorflow']) or 'none'}; only PyTorch: "
        f"{', '.join(found['only_pytorch']) or 'none'}."
    )
    if found["broader"] == "tensorflow":
        return _verdict("C10", SUPPORTED, reason, figures)
    if found["only_tensorflow"]:  # each reached a target the other did not
        return _verdict("C10", INCONCLUSIVE, reason, figures)
    return _verdict("C10", CONTRADICTED, reason, figures)


def c11_torchscript(pt, tf=None):
    """C11 from PyTorch's ``graph_transition()`` facts (``{"deprecated", "warning", "examples",
    "script_ok", "trace_ok", "compile_ok"}``, the last three lists of example names);
    TensorFlow's (``{"examples", "function_ok"}``) only adds its figure for comparison."""
    n = len(pt["examples"])
    script, compiled = len(pt["script_ok"]), len(pt["compile_ok"])
    figures = {
        "pytorch": f"deprecated {pt['deprecated']}; script {script}/{n}, trace {len(pt['trace_ok'])}/{n}, "
        f"compile {compiled}/{n}",
        "tensorflow": f"tf.function {len(tf['function_ok'])}/{len(tf['examples'])}"
        if tf
        else "n/a",
    }
    rejected = [e for e in pt["compile_ok"] if e not in pt["script_ok"]]
    reason = (
        f"torch.jit.script deprecated: {pt['deprecated']}; it accepted {script} of {n} ordinary "
        f"functions unchanged, torch.compile ran {compiled} (rejected by script only: "
        f"{', '.join(rejected) or 'none'})."
    )
    if pt["deprecated"] and rejected:
        return _verdict("C11", CONTRADICTED, reason, figures)
    if not pt["deprecated"] and script == n:
        return _verdict("C11", SUPPORTED, reason, figures)
    return _verdict("C11", INCONCLUSIVE, reason, figures)


def _lines(value):
    """Read a changed-lines figure: an int, or a dict with ``"changed"``; None when absent."""
    if isinstance(value, dict):
        value = value.get("changed")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def c12_distributed(pt, tf):
    """C12 from the figures each track of 07 records (:data:`UPSTREAM` ``C12``): ``{record name:
    value}`` per framework, or None when not recorded yet. Uses the lines changed from
    single-process to distributed code, and whether the distributed run matched one process."""
    names = UPSTREAM["C12"]["records"]
    if pt is None or tf is None:
        missing = [NAMES[fw] for fw, d in (("pytorch", pt), ("tensorflow", tf)) if d is None]
        return _verdict(
            "C12", NOT_MEASURED, f"No distributed figures recorded yet for {', '.join(missing)}."
        )
    lines = {fw: _lines(d.get(names["lines"])) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    diff = {fw: d.get(names["matches"]) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    match = {fw: v is not None and abs(v) <= DISTRIBUTED_ATOL for fw, v in diff.items()}
    if None in lines.values():
        return _verdict(
            "C12", NOT_MEASURED, f"The record {names['lines']!r} is missing in a track."
        )
    figures = {
        fw: f"{lines[fw]} lines changed; max |diff| from one process "
        + (f"{diff[fw]:.1e}" if diff[fw] is not None else "not recorded")
        for fw in FRAMEWORKS
    }
    reason = (
        f"Single-process to distributed: PyTorch changed {lines['pytorch']} lines, TensorFlow "
        f"{lines['tensorflow']}; both matched one process to {DISTRIBUTED_ATOL:g}: {all(match.values())}. "
        "GPUs and TPUs: not measurable here (workers on CPU cores)."
    )
    if not all(match.values()):
        return _verdict("C12", INCONCLUSIVE, reason, figures)
    if lines["tensorflow"] - lines["pytorch"] >= DISTRIBUTED_MARGIN_LINES:
        return _verdict("C12", SUPPORTED, reason, figures)
    if lines["pytorch"] - lines["tensorflow"] >= DISTRIBUTED_MARGIN_LINES:
        return _verdict("C12", CONTRADICTED, reason, figures)
    return _verdict("C12", INCONCLUSIVE, reason, figures)


def c13_hub(counts=None):
    """C13 from a count of a model hub's models (``hub_counts()``): ``{"pytorch_only",
    "tensorflow_only", "both", "neither", "total", "sample"}``, or None when not counted (offline)."""
    quoted = (
        f"The quoted figure: {C13_QUOTED['pytorch_only']:.0%} PyTorch-only, "
        f"{C13_QUOTED['tensorflow_only']:.0%} TensorFlow-only."
    )
    if counts is None:
        return _verdict(
            "C13",
            NOT_MEASURABLE,
            quoted + " Counting needs the hub's online API; this lab runs offline by default.",
            {"pytorch": "not counted", "tensorflow": "not counted"},
        )
    total, pt, tf = counts["total"], counts["pytorch_only"], counts["tensorflow_only"]
    figures = {
        "pytorch": f"{pt} PyTorch-only of {total}",
        "tensorflow": f"{tf} TensorFlow-only of {total}",
    }
    ratio = pt / tf if tf else float("inf")
    reason = (
        f"In {counts['sample']}: {pt / total:.0%} PyTorch-only, {tf / total:.0%} TensorFlow-only "
        f"(ratio {ratio:.1f}). {quoted}"
    )
    if total < MIN_HUB_SAMPLE:
        return _verdict("C13", INCONCLUSIVE, reason + " The sample is too small.", figures)
    if ratio >= FAR_MORE_RATIO:
        return _verdict("C13", SUPPORTED, reason, figures)
    if ratio < 1:
        return _verdict("C13", CONTRADICTED, reason, figures)
    return _verdict("C13", INCONCLUSIVE, reason, figures)


def hub_counts(models, sample):
    """Count a list of hub model entries (dicts with ``"tags"``) by framework tag: ``"pytorch"``
    and ``"tf"``. Returns the dict :func:`c13_hub` reads; ``sample`` says what was counted."""
    counts = {"pytorch_only": 0, "tensorflow_only": 0, "both": 0, "neither": 0}
    for model in models:
        tags = set(model.get("tags") or ())
        pt, tf = "pytorch" in tags, "tf" in tags
        key = (
            "both"
            if pt and tf
            else "pytorch_only"
            if pt
            else "tensorflow_only"
            if tf
            else "neither"
        )
        counts[key] += 1
    return {**counts, "total": len(models), "sample": sample}


HUB_API = "https://huggingface.co/api/models"


def fetch_hub_sample(limit=1000, timeout=30):
    """Ask the Hugging Face Hub's public API for its ``limit`` most-downloaded models and return
    :func:`hub_counts` of them. Needs the internet; the lab calls it only when asked to."""
    import urllib.request

    url = f"{HUB_API}?sort=downloads&direction=-1&limit={int(limit)}"
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (a fixed https URL)
        models = json.load(answer)
    return hub_counts(models, f"the Hub's {len(models)} most-downloaded models")


# ---------------------------------------------------------------- C10 and C12: other lessons


UPSTREAM = {
    # Records the claims lab reads from other lessons, in both tracks. Change names here only.
    "C10": {"concept": "06_deployment", "records": {"targets": "deployment_targets"}},
    "C12": {
        "concept": "07_distributed",
        "records": {
            "lines": "lines_changed_for_distribution",
            "matches": "distributed_vs_single_max_diff",
        },
    },
}


def _run_folder():
    """Return the folder of the course run executing this notebook (the runner sets
    COURSE_WORKDIR to ``<run>/work``), or None outside a run."""
    work = os.environ.get("COURSE_WORKDIR")
    return Path(work).parent if work else None


def upstream(claim, root=None):
    """Return the figures ``claim`` ("C10" or "C12") takes from another lesson's records::

        {"source": what was read (a sentence), "pytorch": {name: value} | None,
         "tensorflow": {name: value} | None}

    Read from the executed copies of that lesson in the course run executing this notebook
    (``course run`` writes them under its output folder) when present, else from the committed
    notebooks' stored records. A track whose notebook or records are missing gives None.
    """
    from .paths import find_root
    from .records import read_records

    spec = UPSTREAM[claim]
    concept, names = spec["concept"], set(spec["records"].values())
    root = Path(root) if root else find_root()
    places = []
    run = _run_folder()
    if run is not None:
        places.append(("the executed copies of this course run", run / "notebooks" / concept))
    if root is not None:
        places.append(("the committed notebooks' stored records", root / "notebooks" / concept))
    for label, folder in places:
        found = {}
        for track in FRAMEWORKS:
            path = folder / f"{track}.ipynb"
            if not path.is_file():
                found[track] = None
                continue
            recs = {r["name"]: r["value"] for r in read_records(path) if r["name"] in names}
            found[track] = recs or None
        if any(v is not None for v in found.values()):
            where = (
                folder.relative_to(root).as_posix()
                if root and folder.is_relative_to(root)
                else str(folder)
            )
            return {"source": f"{label} ({where}/)", **found}
    return {
        "source": f"none: no {concept} notebook has recorded {sorted(names)} yet",
        "pytorch": None,
        "tensorflow": None,
    }


def upstream_verdict(claim, figures):
    """Return the verdict of C10 or C12 from :func:`upstream`'s figures."""
    if claim == "C10":
        key = UPSTREAM["C10"]["records"]["targets"]
        rows = [(figures[fw] or {}).get(key) for fw in FRAMEWORKS]
        return c10_deployment(*rows)
    return c12_distributed(figures["pytorch"], figures["tensorflow"])


# ---------------------------------------------------------------- the whole table


def assess(results, upstream_figures=None, hub=None):
    """Return every claim's :class:`Verdict`, in order, from the harness's ``results``
    (``{"pytorch": result, "tensorflow": result}``), the C10/C12 figures (``{"C10": ...,
    "C12": ...}`` from :func:`upstream`) and the optional hub count for C13."""
    pt, tf = results["pytorch"], results["tensorflow"]
    upstream_figures = upstream_figures or {}
    accel = pt["setup"].get("accelerator")
    busy = machine_busy(results)
    pt_cpu = {**pt["ops"]["cpu"], "training step": pt["timing"]["large"][DEFAULT_MODE["pytorch"]]}
    tf_cpu = {
        **tf["ops"]["cpu"],
        "training step": tf["timing"]["large"][DEFAULT_MODE["tensorflow"]],
    }
    if accel:  # the training steps ran on the accelerator: not a CPU row
        pt_cpu.pop("training step"), tf_cpu.pop("training step")
    verdicts = [
        c1_define_by_run(pt["demos"]["c1"], tf["demos"]["c1"]),
        c2_debugging(pt["demos"]["c2"], tf["demos"]["c2"]),
        c3_small_models(pt["timing"]["small"], tf["timing"]["small"], busy=busy),
        c4_large_models(pt["timing"]["large"], tf["timing"]["large"], accel, busy=busy),
        c5_training_memory(
            pt["memory"][DEFAULT_MODE["pytorch"]], tf["memory"][DEFAULT_MODE["tensorflow"]]
        ),
        c6_graph_memory(pt["memory"], tf["memory"]),
        c7_accuracy(pt["accuracy"], tf["accuracy"]),
        c8_gpu_code(pt["demos"]["c8"], tf["demos"]["c8"]),
        c9_speed(pt_cpu, tf_cpu, pt["ops"].get("gpu"), tf["ops"].get("gpu"), busy=busy),
    ]
    for claim in ("C10",):
        verdicts.append(upstream_verdict(claim, upstream_figures.get(claim) or _nothing()))
    verdicts.append(c11_torchscript(pt["demos"]["c11"], tf["demos"]["c11"]))
    verdicts.append(upstream_verdict("C12", upstream_figures.get("C12") or _nothing()))
    verdicts.append(c13_hub(hub))
    return verdicts


def _nothing():
    return {"source": "not read", "pytorch": None, "tensorflow": None}


def setup_line(framework, setup):
    """Return one line saying how a framework was measured: version, device, threads, kernel
    libraries, and how busy other programs kept the CPU when its process started and ended."""
    load = [f"{x:.1f}" for x in setup.get("load") or () if x is not None]
    kind = setup.get("load_kind") or "load average"
    label = "others' CPU use" if kind == "cpu use" else "load average"
    text = (
        f"{NAMES[framework]} {setup['version']} on {setup['device']}: {setup['threads']} threads "
        f"({setup['interop_threads']} inter-op), {setup['kernels']}"
    )
    if "keras" in setup:
        text += f", Keras {setup['keras']}"
    return text + (f"; {label} {' -> '.join(load)}" if load else "")


def format_table(verdicts, width=100):
    """Return the verdict table as plain text: one block per claim (outcome, figures, reason)."""
    lines = []
    for v in verdicts:
        lines.append(f"{v.claim:>3}  {CLAIMS[v.claim].title:<44} {v.outcome.upper()}")
        for fw in FRAMEWORKS:
            if v.figures.get(fw):
                lines.append(
                    textwrap.fill(
                        f"{NAMES[fw]}: {v.figures[fw]}",
                        width,
                        initial_indent=" " * 5,
                        subsequent_indent=" " * 7,
                    )
                )
        lines.append(
            textwrap.fill(v.reason, width, initial_indent=" " * 5, subsequent_indent=" " * 5)
        )
    return "\n".join(lines)


def outcome_counts(verdicts):
    """Return ``{outcome: how many claims}`` for every outcome, in :data:`OUTCOMES` order."""
    return {o: sum(v.outcome == o for v in verdicts) for o in OUTCOMES}


def plot_data(results):
    """Return the numbers behind the plots of the quantitative claims (JSON-ready), from the
    harness's results: C3/C4 step quartiles per mode, C5/C6 memory, C7 accuracies, C9 ops."""
    pt, tf = results["pytorch"], results["tensorflow"]
    both = (("pytorch", pt), ("tensorflow", tf))
    data = {
        "C3": {
            fw: {m: quartiles(e["times"]) for m, e in r["timing"]["small"].items()}
            for fw, r in both
        },
        "C4": {
            fw: {m: quartiles(e["times"]) for m, e in r["timing"]["large"].items()}
            for fw, r in both
        },
        "C5": {
            fw: {
                k: r["memory"][DEFAULT_MODE[fw]][k]
                for k in ("runtime", "train_peak", "train_delta")
            }
            for fw, r in both
        },
        "C6": {fw: {m: e["steady_delta"] for m, e in r["memory"].items()} for fw, r in both},
        "C7": {
            "seeds": pt["accuracy"]["seeds"],
            **{fw: r["accuracy"]["test_accuracy"] for fw, r in both},
        },
        "C9": {
            "ops": list(pt["ops"]["cpu"]),
            **{
                fw: [quartiles(r["ops"]["cpu"][op]["times"]) for op in pt["ops"]["cpu"]]
                for fw, r in both
            },
        },
    }
    accel = {fw: r["memory"][DEFAULT_MODE[fw]].get("accelerator_peak") for fw, r in both}
    if all(v is not None for v in accel.values()):
        for fw in FRAMEWORKS:
            data["C5"][fw]["accelerator_peak"] = accel[fw]
    return data


PLOTTED = ("C3", "C4", "C5", "C6", "C7", "C9")
COLOURS = {"pytorch": "#ee4c2c", "tensorflow": "#ff8f00"}


def plot(claim, data, ax=None):
    """Draw the plot of a quantitative claim (one of :data:`PLOTTED`) from :func:`plot_data`'s
    numbers; return the matplotlib figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
    else:
        fig = ax.figure
    d = data[claim]
    if claim in ("C3", "C4"):
        labels, x = [], 0
        for fw in FRAMEWORKS:
            for mode in [m for m in MODES[fw] if m in d[fw]]:
                q1, med, q3 = d[fw][mode]
                ax.bar(
                    x,
                    med * 1e3,
                    yerr=[[(med - q1) * 1e3], [(q3 - med) * 1e3]],
                    color=COLOURS[fw],
                    capsize=3,
                )
                labels.append(f"{NAMES[fw]}\n{mode}")
                x += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("training step (ms, log scale)")
        ax.set_title(f"{claim}: {'small' if claim == 'C3' else 'large'} model, median and IQR")
    elif claim == "C5":
        keys = [
            k
            for k in ("runtime", "train_peak", "train_delta", "accelerator_peak")
            if k in d["pytorch"]
        ]
        pos = np.arange(len(keys))
        for off, fw in ((-0.2, "pytorch"), (0.2, "tensorflow")):
            ax.bar(pos + off, [d[fw][k] for k in keys], 0.4, label=NAMES[fw], color=COLOURS[fw])
        ax.set_xticks(
            pos,
            ["framework loaded", "peak in training", "added by training", "allocator peak"][
                : len(keys)
            ],
        )
        ax.set_ylabel("MiB")
        ax.set_title("C5: memory of the default training mode")
        ax.legend()
    elif claim == "C6":
        labels, x = [], 0
        for fw in FRAMEWORKS:
            for mode in [m for m in MODES[fw] if m in d[fw]]:
                ax.bar(x, d[fw][mode], color=COLOURS[fw])
                labels.append(f"{NAMES[fw]}\n{mode}")
                x += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel("MiB added by steady steps")
        ax.set_title("C6: eager vs graph modes")
    elif claim == "C7":
        for fw, marker in (("pytorch", "o"), ("tensorflow", "x")):
            ax.plot(d["seeds"], d[fw], marker, label=NAMES[fw], color=COLOURS[fw], ms=8)
        ax.set_xlabel("seed")
        ax.set_ylabel("test accuracy")
        ax.set_title("C7: same weights and batches per seed")
        ax.legend()
    elif claim == "C9":
        ratio = [tq[1] / pq[1] for pq, tq in zip(d["pytorch"], d["tensorflow"], strict=True)]
        ax.barh(
            range(len(ratio)),
            ratio,
            color=[COLOURS["pytorch"] if r > 1 else COLOURS["tensorflow"] for r in ratio],
        )
        ax.axvline(1, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(ratio)), [OP_LABELS.get(op, op) for op in d["ops"]], fontsize=8)
        ax.set_xlabel("TensorFlow time / PyTorch time (below 1: TensorFlow faster)")
        ax.set_title("C9: the same operations on the CPU")
    else:
        raise ValueError(f"no plot for {claim}")
    fig.tight_layout()
    return fig


def as_record(verdicts, data, machine, setup):
    """Return the plain dict a notebook records as ``claims``: the verdicts, the plot numbers,
    the machine line and each framework's setup (versions, threads, device)."""
    return {
        "machine": machine,
        "setup": setup,
        "verdicts": [v.as_dict() for v in verdicts],
        "plots": data,
    }


# ---------------------------------------------------------------- showing it in a notebook


def describe(claim, width=100):
    """Return the claim as commonly written, why it might be true, and the rule that decides it
    (plain text, wrapped to ``width``)."""
    c = CLAIMS[claim]

    def wrap(text):
        return textwrap.fill(text, width, subsequent_indent="    ")

    return "\n".join(
        [
            f"{c.id} · {c.title}",
            wrap(f'claim: "{c.text}"'),
            wrap(f"why it might be true: {c.why}"),
            wrap(f"rule: {RULES[claim]}"),
        ]
    )


def source(*functions):
    """Return the source code of ``functions`` as a Markdown code block, which Jupyter shows
    highlighted (an ``IPython.display.Markdown`` object)."""
    from IPython.display import Markdown

    text = "\n\n\n".join(textwrap.dedent(inspect.getsource(f)).rstrip() for f in functions)
    return Markdown(f"```python\n{text}\n```")


def timing_table(results, size):
    """Return a text table of one model size's training step in every mode of both frameworks:
    first call, median step, IQR, and for graph modes the break-even step count against that
    framework's eager step (:func:`course_utils.compiling.break_even_steps`)."""
    from .compiling import break_even_steps

    head = f"{'':<11} {'mode':<9} {'first call':>11} {'median step':>12} {'IQR':>10} {'break-even':>11}"
    lines = [head]
    for fw in FRAMEWORKS:
        modes = results[fw]["timing"][size]
        eager = quartiles(modes["eager"]["times"])[1]
        for mode, e in modes.items():
            q1, med, q3 = quartiles(e["times"])
            if mode == "eager":
                even = "-"
            else:
                n = break_even_steps(e["first_s"], eager, med)
                even = f"{n} steps" if n else "never"
            lines.append(
                f"{NAMES[fw]:<11} {mode:<9} {fmt_time(e['first_s']):>11} {fmt_time(med):>12} "
                f"{fmt_time(q3 - q1):>10} {even:>11}"
            )
    return "\n".join(lines)


def memory_table(results):
    """Return a text table of the training-memory figures (MiB) of every mode measured."""
    head = (
        f"{'':<11} {'mode':<9} {'runtime':>8} {'1st step':>9} {'steady':>8} {'peak':>8} "
        f"{'allocator':>10}"
    )
    lines = [head, f"{'':<21}{'(MiB: framework loaded; added by the first step, by later steps)'}"]
    for fw in FRAMEWORKS:
        for mode, m in results[fw]["memory"].items():
            accel = "-" if m["accelerator_peak"] is None else f"{m['accelerator_peak']:.0f}"
            lines.append(
                f"{NAMES[fw]:<11} {mode:<9} {m['runtime']:>8.0f} {m['first_step_delta']:>9.1f} "
                f"{m['steady_delta']:>8.1f} {m['train_peak']:>8.0f} {accel:>10}"
            )
    return "\n".join(lines)


def accuracy_table(results):
    """Return a text table of the test accuracy of every seed in both frameworks."""
    seeds = results["pytorch"]["accuracy"]["seeds"]
    lines = [f"{'seed':<11}" + "".join(f"{s:>8}" for s in seeds) + f"{'mean':>9}{'sd':>8}"]
    for fw in FRAMEWORKS:
        acc = results[fw]["accuracy"]["test_accuracy"]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(
            f"{NAMES[fw]:<11}"
            + "".join(f"{a:>8.4f}" for a in acc)
            + f"{statistics.mean(acc):>9.4f}{sd:>8.4f}"
        )
    return "\n".join(lines)


def ops_table(pt_ops, tf_ops):
    """Return a text table of operation times in both frameworks (``{op: {"times"}}`` each):
    median and IQR, and which framework was clearly faster (:func:`op_comparison`)."""
    said = op_comparison(pt_ops, tf_ops)
    lines = [f"{'operation':<34} {'PyTorch':>18} {'TensorFlow':>18}  clearly faster"]
    for op, who in said.items():
        cells = []
        for ops in (pt_ops, tf_ops):
            q1, med, q3 = quartiles(ops[op]["times"])
            cells.append(f"{fmt_time(med)} ±{fmt_time((q3 - q1) / 2)}")
        label = OP_LABELS.get(op, op)
        lines.append(f"{label:<34} {cells[0]:>18} {cells[1]:>18}  {NAMES.get(who, who)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run report


def _rows_from(records):
    """Return ``{track: claims record}`` for the lessons' ``claims`` records among ``records``."""
    return {
        r["track"]: r["value"]
        for r in records
        if r.get("concept") == "09_claims_lab" and r.get("name") == "claims"
    }


def report_section(outcomes, out):
    """Return ``(markdown lines, html)`` of the claims table for the run report, and write one
    PNG per quantitative claim under ``out``; ``([], "")`` when no claims lab ran."""
    import base64
    import html

    from .report import _png

    lessons = [o for o in outcomes if o.entry.set == "notebooks"]
    found = _rows_from([r for o in lessons for r in o.records])
    if not found:
        return [], ""
    track = "pytorch" if "pytorch" in found else "tensorflow"
    main, other = found[track], found.get("tensorflow" if track == "pytorch" else "pytorch")
    others = {v["claim"]: v["outcome"] for v in (other or {}).get("verdicts", [])}
    rows = []
    for v in main["verdicts"]:
        verdict = v["outcome"]
        if v["claim"] in others and others[v["claim"]] != verdict:
            verdict += f" (the {NAMES['tensorflow' if track == 'pytorch' else 'pytorch']} notebook's run: {others[v['claim']]})"
        rows.append(
            (
                v["claim"],
                CLAIMS[v["claim"]].title,
                verdict,
                v["figures"].get("pytorch", ""),
                v["figures"].get("tensorflow", ""),
                v["reason"],
            )
        )
    md = [
        "## Claims: verdicts on this machine",
        "",
        f"Measured by the {NAMES[track]} lesson of 09_claims_lab in this run, both frameworks "
        "in fresh processes with the same model, data, batch, dtype and threads.",
        "",
        f"- machine: {main['machine']}",
    ]
    md += [f"- {setup_line(fw, main['setup'][fw])}" for fw in FRAMEWORKS if fw in main["setup"]]
    md += ["", "| claim | verdict | PyTorch | TensorFlow | why |", "|---|---|---|---|---|"]
    md += [f"| {c} {t} | **{v}** | {p} | {f} | {r} |" for c, t, v, p, f, r in rows]
    images = []
    for claim in PLOTTED:
        if claim in main["plots"]:
            png = _png(plot(claim, main["plots"]))
            (Path(out) / f"claims_{claim}.png").write_bytes(png)
            images.append((claim, png))
    md += [""] + [f"![{c}: {CLAIMS[c].title}](claims_{c}.png)" for c, _ in images]
    md += ["", "## This run", ""]
    esc = html.escape
    body = "".join(
        f"<tr><td>{esc(c)} {esc(t)}</td><td><b>{esc(v)}</b></td><td>{esc(p)}</td><td>{esc(f)}</td><td>{esc(r)}</td></tr>"
        for c, t, v, p, f, r in rows
    )
    pics = "".join(
        f'<img alt="{esc(c)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for c, png in images
    )
    lines = [esc(main["machine"])] + [
        esc(setup_line(fw, main["setup"][fw])) for fw in FRAMEWORKS if fw in main["setup"]
    ]
    page = (
        f"<h2>Claims: verdicts on this machine</h2><p>{'<br>'.join(lines)}</p>"
        f"<table><tr><th>claim</th><th>verdict</th><th>PyTorch</th><th>TensorFlow</th><th>why</th></tr>{body}</table>{pics}"
    )
    return md, page

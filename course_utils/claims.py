"""The claims lab (09_claims_lab): the thirteen popular claims, the rules that decide them, and
verdict functions that compute a verdict from measured figures.

Nothing here imports a framework. The measurements come from the harness
(:mod:`course_utils.claims_worker`), which runs each framework's side of the experiments
(:mod:`course_utils.claims_torch`, :mod:`course_utils.claims_tf`) in fresh processes and returns
one JSON-ready dict per framework::

    {"framework": "pytorch" | "tensorflow",
     "setup": {"version", "threads", "device", ...},
     "memory": {mode: MEMORY},                                   # C5, C6
     "timing": {"small" | "large" | "cnn": {mode: TIMING}},      # C3, C4 (and C9's step row)
     "accuracy": {"seeds", "test_accuracy", "n_test", "epochs"},  # C7
     "ops": {"cpu": {op: {"times"}}, "gpu": {op: {"times"}}},     # C9
     "demos": {"c1", "c2", "c8", "c11", "c12"},                   # C1, C2, C8, C11, C12
     "loads": [{"process", "when", "value", "kind", "cpus"}],     # the busy check
     "processes": {"timing": how many timing processes}}

    MEMORY = {"runtime", "first_step_delta", "steady_delta", "train_peak", "train_delta"}  (MiB),
             plus "accelerator_peak" (MiB or None), "peak_was_reset", "parameters", "steps"
    TIMING = {"first_s": [each timing process's first call], "times": [each timing process's
              median steady step]}; an operation's "times" likewise hold one median per process.

The timing rule (:func:`decide_timing`) compares those per-process figures: the spread is the
range between processes, and a verdict needs the ranges apart and :data:`MIN_EFFECT`.

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
MIN_EFFECT = (
    0.10  # C3, C4, C9: a timing difference counts only when the slower median is >= 10 % slower
)
MIN_PROCESSES = 3  # C3, C4, C9: per framework, at least this many fresh timing processes
MEMORY_RTOL, MEMORY_ATOL_MIB = 0.10, 8.0  # C5, C6: a memory difference must exceed both
C7_ROUNDING_IMAGES = 2  # C7: a per-seed difference this small is rounding on a decision boundary
MINIMAL_LINES, MANY_LINES = 5, 10  # C8: "minimal code changes" is at most 5 changed lines
FAR_MORE_RATIO, MIN_HUB_SAMPLE = 5.0, 100  # C13: "far more" is at least 5 times as many
DISTRIBUTED_MARGIN_LINES = 3  # C12: "easier" needs at least 3 fewer lines in the whole script
DISTRIBUTED_ATOL = 1e-5  # C12: 07's parity tolerance, distributed vs one process (max |diff|)
# C10: targets reached through a framework-neutral route (an ONNX file, ONNX Runtime Web, the
# course's own HTTP server): whichever framework reached them, both can.
NEUTRAL_TARGETS = ("ONNX", "browser", "HTTP server")

TIMING_RULE = (
    f"each timing is taken in at least {MIN_PROCESSES} fresh processes per framework, PyTorch and "
    "TensorFlow alternating; a framework is clearly faster only when the ranges of its "
    "per-process figures and the other's do not overlap AND the slower median is at least "
    f"{MIN_EFFECT:.0%} slower; otherwise inconclusive, with the reason"
)
BUSY_RULE = (
    "; inconclusive whenever other programs kept the machine busy around any timing process (the "
    "highest reading counts: more than a quarter of the CPUs' time in use, or a 1-minute load "
    "average above half the CPUs where that is all the system says)"
)
RULES = {
    "C1": "supported when PyTorch's recorded graph follows the data, TensorFlow runs eagerly by "
    "default with its recorded operations following the data too, and tf.function still builds "
    "one static graph holding the loop",
    "C2": "supported when print and a breakpoint see values on every call in both frameworks' "
    "eager mode, and a graph mode hides them; contradicted when neither eager mode shows them, "
    "or no graph mode hides them",
    "C3": f"small model, a run of {RUN_STEPS} steps (first call + {RUN_STEPS - 1} steady steps), "
    f"each framework in its fastest mode; {TIMING_RULE}" + BUSY_RULE,
    "C4": "steady-state step on two models, the large MLP and a small CNN (where fusing "
    "convolutions, activations and pooling can pay): TensorFlow's faster of graph/XLA against "
    f"PyTorch's faster of eager/compiled; {TIMING_RULE}; supported or contradicted only when both "
    "models say so" + BUSY_RULE,
    "C5": f"memory added by training (process peak minus the process after imports, data and "
    f"model build) in each framework's default mode, in a fresh process; on a GPU the allocator "
    f"peak instead; a difference counts when it exceeds {MEMORY_RTOL:.0%} of the smaller figure "
    f"and {MEMORY_ATOL_MIB:g} MiB",
    "C6": "supported when TensorFlow's graph mode adds less memory per steady training step "
    "(peak of the later steps minus the process after the first step, so the traced graph is "
    f"left out) than its eager mode, by more than {MEMORY_RTOL:.0%} and {MEMORY_ATOL_MIB:g} MiB; "
    "contradicted when it adds more by as much; inconclusive in between",
    "C7": "per seed, both frameworks start from the same weights and batches: supported when every "
    "per-seed difference between the frameworks is below the median seed-to-seed change (within "
    f"a framework) or at most {C7_ROUNDING_IMAGES} test images; contradicted when the median "
    "per-seed difference reaches the seed-to-seed change; inconclusive in between",
    "C8": f"supported when moving the PyTorch training code to a device changes at most "
    f"{MINIMAL_LINES} lines; contradicted above {MANY_LINES}",
    "C9": "CPU half, by a majority of operations: each row of the operation table (5 operations "
    f"and the training step) is decided by the timing rule ({TIMING_RULE}); supported when "
    "TensorFlow is clearly faster on more than half of the rows, contradicted when PyTorch is; "
    "otherwise inconclusive. GPU half: the same majority for PyTorch on a GPU; the halves must "
    "agree" + BUSY_RULE,
    "C10": "each of 06's targets is reached or not per framework; targets reached through a "
    f"framework-neutral route ({', '.join(NEUTRAL_TARGETS)}) count as reached by both; supported "
    "when TensorFlow reached a framework-specific target that PyTorch did not and not the other "
    "way round; contradicted when PyTorch did and not the other way round; a tie is "
    "inconclusive",
    "C11": "contradicted when TorchScript warns that it is deprecated and rejects ordinary "
    "Python that torch.compile runs unchanged; supported when it is not deprecated and accepts "
    "every example",
    "C12": "multi-GPU half: the complete runnable script of each side is counted (launcher and "
    "process-group setup included) against the same script for one process; TensorFlow's "
    "fewer-line route (Keras fit or a custom loop) counts; supported when PyTorch's adds at "
    f"least {DISTRIBUTED_MARGIN_LINES} fewer lines, contradicted when TensorFlow's adds at least "
    "that many fewer, inconclusive in between",
    "C13": f"supported when PyTorch-only models outnumber TensorFlow-only ones at least "
    f"{FAR_MORE_RATIO:g} to 1 in a sample of at least {MIN_HUB_SAMPLE} models; contradicted below "
    "1 to 1",
}

# What a CPU-only machine leaves out of each claim that it measures only in part.
PARTLY = {
    "C4": "GPU use (utilisation) and speed on a GPU",
    "C5": "GPU memory: the quoted 1.7 GB vs 3.5 GB are GPU figures and cannot be checked on a CPU",
    "C6": "fragmentation (visible only in a GPU allocator's reserved-minus-allocated memory)",
    "C8": "a run on a real GPU (the device version ran on the CPU)",
    "C9": "the GPU half (PyTorch faster on GPUs)",
    "C10": "how mature each route is (serving, mobile and browser tooling beyond one artifact)",
    "C12": "GPUs and TPUs (the distributed runs use CPU processes)",
}


# ---------------------------------------------------------------- settings and shared inputs


def mlp_spec(d_in, hidden, depth, d_out=10):
    """Return the layer spec (as :func:`course_utils.training.init_weights` reads it) of the MLP
    :func:`course_utils.compiling.torch_mlp` builds: ``depth`` hidden layers of width ``hidden``."""
    spec = [("dense", d_in, hidden)]
    spec += [("dense", hidden, hidden) for _ in range(depth - 1)]
    return spec + [("dense", hidden, d_out)]


def cnn_spec(size):
    """Return the layer spec of the small CNN C4 also times (``size["kind"] == "cnn"``): two 3x3
    convolutions with ReLU, each followed by 2x2 max pooling, then a dense head, on square RGB
    images of ``size["image"]`` pixels."""
    c1, c2 = size["channels"]
    side = size["image"] // 4
    return [("conv", 3, 3, 3, c1), ("conv", 3, 3, c1, c2), ("dense", (side, side, c2), 10)]


def model_spec(size):
    """Return the layer spec of the model ``size`` describes: the CNN or the MLP."""
    if size.get("kind") == "cnn":
        return cnn_spec(size)
    return mlp_spec(size["d_in"], size["hidden"], size["depth"])


def parameter_count(size):
    """Return the number of parameters of the model described by ``size`` (MLP or CNN)."""
    total = 0
    for kind, *dims in model_spec(size):
        if kind == "conv":
            kh, kw, c_in, c_out = dims
            total += kh * kw * c_in * c_out + c_out
        else:
            n_in, n_out = dims
            n_in = int(np.prod(n_in)) if isinstance(n_in, tuple) else n_in
            total += n_in * n_out + n_out
    return total


def cnn_batch(size, seed=0):
    """Return the CNN's fixed batch, ``(images NHWC float32, labels int64)``, drawn in NumPy."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((size["batch"], size["image"], size["image"], 3), np.float32)
    return images, rng.integers(0, 10, size["batch"]).astype(np.int64)


ACCURACY_SIZE = {"d_in": 64, "hidden": 64, "depth": 1}  # 05's MLP (training.MLP_SPEC)


def settings(quick=True, seed=0, device="auto", threads=None):
    """Return the plan both frameworks are measured with (a dict; the same for both).

    Quick mode keeps the lesson short on a 2-core CPU; full mode uses a model with tens of
    millions of parameters for the memory and large-model figures, more seeds, more repeats and
    more timing processes. ``threads=None`` means one per CPU core; both frameworks get the same
    number. Every timing is taken in ``rounds`` fresh processes per framework (PyTorch and
    TensorFlow alternating); in each, an entry takes ``warmup`` untimed steps, then ``repeats``
    timed ones, and the process's figure is their median.
    """
    threads = int(threads or os.cpu_count() or 1)
    large = (
        {"d_in": 64, "hidden": 1024, "depth": 2, "warmup": 2, "repeats": 5}
        if quick
        else {"d_in": 64, "hidden": 4096, "depth": 3, "warmup": 2, "repeats": 10}
    )
    cnn = (
        {"kind": "cnn", "image": 32, "channels": [16, 32], "batch": 32, "warmup": 2, "repeats": 5}
        if quick
        else {
            "kind": "cnn",
            "image": 32,
            "channels": [32, 64],
            "batch": 64,
            "warmup": 2,
            "repeats": 10,
        }
    )
    return {
        "quick": bool(quick),
        "rounds": MIN_PROCESSES if quick else 5,
        "seed": int(seed),
        "device": str(device),
        "threads": threads,
        "lr": 0.01,
        "small": {
            "d_in": 64,
            "hidden": 64,
            "depth": 2,
            "batch": 32,
            "warmup": 3 if quick else 5,
            "repeats": 10 if quick else 40,
        },
        "large": {**large, "batch": 256},
        "cnn": cnn,
        "warmup": 2 if quick else 3,  # operation timings (C9)
        "repeats": 7 if quick else 30,
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


def script_lines(text):
    """Return the code lines of a whole script (text): no blank or comment-only lines, and no
    indentation. Imports, the launcher and ``if __name__ == "__main__":`` all count."""
    lines = []
    for line in textwrap.dedent(text).splitlines():
        code = line.split("  #")[0].strip()
        if code and not code.startswith("#"):
            lines.append(code)
    return lines


def script_counts(routes):
    """C12: for each route ``{name: (one-process script, distributed script)}`` (texts), return
    ``{name: {"single": lines, "distributed": lines, "changed": lines changed}}``, counted as
    :func:`changed_lines` counts functions."""
    out = {}
    for name, (single, distributed) in routes.items():
        a, b = script_lines(single), script_lines(distributed)
        changed = 0
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag != "equal":
                changed += max(i2 - i1, j2 - j1)
        out[name] = {"single": len(a), "distributed": len(b), "changed": changed}
    return out


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


def spread(values):
    """Return ``(lowest, median, highest)`` of per-process figures: the spread between processes."""
    values = sorted(values)
    return values[0], statistics.median(values), values[-1]


@dataclass(frozen=True)
class Decision:
    """What the timing rule decided for two lists of per-process figures (lower is faster):
    ``winner`` "a", "b" or None (inconclusive), the ``reason``, and ``ratio`` = slower median /
    faster median (None when a side is missing)."""

    winner: str | None
    reason: str
    ratio: float | None = None


def decide_timing(a, b, labels=("PyTorch", "TensorFlow"), busy=None, fmt=None):
    """The one timing rule of the lab (:data:`TIMING_RULE`): which of ``a`` and ``b`` (lists of
    seconds, one figure per fresh process) is clearly faster, or None with the reason.

    In order: a side with no figures, or fewer than :data:`MIN_PROCESSES`, is inconclusive; the
    ranges (lowest to highest process) must not overlap; the slower median must be at least
    :data:`MIN_EFFECT` slower than the faster one; and ``busy`` (:func:`machine_busy`'s sentence)
    makes any answer inconclusive, saying what the figures alone said.
    """
    fmt = fmt or fmt_time
    for label, values in zip(labels, (a, b), strict=True):
        if not values:
            return Decision(None, f"{label} was not measured.")
    for label, values in zip(labels, (a, b), strict=True):
        if len(values) < MIN_PROCESSES:
            return Decision(
                None,
                f"{label} was timed in {len(values)} process(es); the rule needs {MIN_PROCESSES}.",
            )
    (a_lo, a_med, a_hi), (b_lo, b_med, b_hi) = spread(a), spread(b)
    ratio = max(a_med, b_med) / min(a_med, b_med) if min(a_med, b_med) > 0 else float("inf")
    faster = "a" if a_med <= b_med else "b"
    name = labels[0] if faster == "a" else labels[1]
    text = (
        f"{labels[0]} {fmt(a_med)} (processes {fmt(a_lo)}-{fmt(a_hi)}), {labels[1]} {fmt(b_med)} "
        f"(processes {fmt(b_lo)}-{fmt(b_hi)})"
    )
    if not (a_hi < b_lo or b_hi < a_lo):
        return Decision(None, text + ": the ranges between processes overlap.", ratio)
    if ratio - 1 < MIN_EFFECT:
        return Decision(
            None,
            text + f": {name} is faster by {ratio - 1:.0%} only, below the minimum effect of "
            f"{MIN_EFFECT:.0%}.",
            ratio,
        )
    if busy:
        return Decision(
            None, f"{busy} The figures alone say {name} is {ratio:.2f}x faster: {text}.", ratio
        )
    return Decision(faster, text + f": {name} {ratio:.2f}x faster, the ranges apart.", ratio)


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
    missing: str = ""  # what part of the claim was not measured ("": all of it was)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    def as_dict(self):
        return asdict(self)

    @property
    def label(self):
        """The outcome as the table prints it: ``SUPPORTED``, or ``SUPPORTED, partly measured``
        when part of the claim was not measured."""
        partly = self.missing and self.outcome not in (NOT_MEASURABLE, NOT_MEASURED)
        return self.outcome.upper() + (", partly measured" if partly else "")

    def __str__(self):
        text = f"{self.claim} {CLAIMS[self.claim].title}: {self.label}. {self.reason}"
        if self.missing and self.outcome not in (NOT_MEASURABLE, NOT_MEASURED):
            text += f" Not measured here: {self.missing}."
        return text


def _verdict(claim, outcome, reason, figures=None, missing=None):
    return Verdict(claim, outcome, reason, RULES[claim], figures or {}, missing or "")


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
    """Return why this run's timings cannot be trusted (a sentence naming the worst reading), or
    None.

    Every timing process measures how much CPU other programs use, for half a second before it
    imports its framework and again when it has finished (``result["loads"]``: dicts with
    ``process``, ``when``, ``value``, ``kind`` "cpu use" on Linux or "load average" elsewhere,
    and ``cpus``). The **highest** of these readings counts: timings are doubtful when other
    programs were busy at any point, and not evenly so: threads that wait for each other at a
    barrier after every parallel operation (PyTorch's OpenMP) lose far more than threads that
    take work from a queue (TensorFlow's). Above :data:`BUSY_SHARE` of the CPUs the figures
    measure the machine's load as much as the frameworks.
    """
    worst, worst_share = None, -1.0
    for result in results.values():
        for reading in result.get("loads") or ():
            value, cpus = reading.get("value"), reading.get("cpus")
            if value is None or not cpus:
                continue
            kind = reading.get("kind") or "load average"
            share = value / (BUSY_SHARE[kind] * cpus)
            if share > worst_share:
                worst, worst_share = {**reading, "kind": kind}, share
    if worst is None or worst_share <= 1:
        return None
    load, cpus, kind = worst["value"], worst["cpus"], worst["kind"]
    limit = BUSY_SHARE[kind] * cpus
    where = f"{worst.get('when', 'around')} {worst.get('process', 'a timing process')}"
    if kind == "cpu use":
        measured = f"other programs used {load:.1f} of {cpus} CPUs {where}"
    else:
        measured = f"1-minute load average {load:.1f} on {cpus} CPUs {where}"
    return (
        f"The machine was busy while timing (highest reading: {measured}, above {limit:g}): "
        "other programs' work is in these figures."
    )


def _outcome(winner, supports):
    """Map a :class:`Decision` winner to an outcome: ``supports`` is the winner the claim wants."""
    if winner is None:
        return INCONCLUSIVE
    return SUPPORTED if winner == supports else CONTRADICTED


def run_totals(entry, steps=RUN_STEPS):
    """Per-process seconds of a run of ``steps`` steps: each process's first call plus
    ``steps - 1`` times its median steady step."""
    return [f + (steps - 1) * t for f, t in zip(entry["first_s"], entry["times"], strict=True)]


def _median(values):
    return statistics.median(values) if values else float("inf")


def c3_small_models(pt, tf, steps=RUN_STEPS, busy=None):
    """C3 from the small model's ``TIMING`` entries of both frameworks (``{mode: TIMING}``, one
    figure per process): each framework's fastest mode for a run of ``steps`` steps, first call
    included, decided by :func:`decide_timing`."""
    pt_mode = min(pt, key=lambda m: _median(run_totals(pt[m], steps)))
    tf_mode = min(tf, key=lambda m: _median(run_totals(tf[m], steps)))
    figures = {
        "pytorch": f"step: {_modes_text(pt, lambda e: fmt_time(_median(e['times'])))}",
        "tensorflow": f"step: {_modes_text(tf, lambda e: fmt_time(_median(e['times'])))}",
    }
    said = decide_timing(
        run_totals(pt[pt_mode], steps),
        run_totals(tf[tf_mode], steps),
        (f"PyTorch {pt_mode}", f"TensorFlow {tf_mode}"),
        busy,
    )
    reason = f"A run of {steps} steps, first call included: {said.reason}"
    return _verdict("C3", _outcome(said.winner, "a"), reason, figures)


C4_MODELS = {"large": "large MLP", "cnn": "small CNN"}


def c4_large_models(pt, tf, accelerator=None, busy=None):
    """C4 from the ``TIMING`` entries of the models it uses (``{model: {mode: TIMING}}`` with the
    models of :data:`C4_MODELS`), steady state: TensorFlow's faster graph mode against PyTorch's
    faster mode, per model; the models must agree.

    ``accelerator`` names the device the steps ran on (None: the CPU).
    """
    models = [m for m in C4_MODELS if m in pt and m in tf]
    if not models:
        return _verdict("C4", NOT_MEASURED, "No model was timed in both frameworks.")
    parts, winners, figures = [], [], {"pytorch": [], "tensorflow": []}
    for model in models:
        graph = {m: e for m, e in tf[model].items() if m in GRAPH_MODES["tensorflow"]}
        if not graph:
            return _verdict("C4", NOT_MEASURED, "TensorFlow's graph modes were not measured.")
        tf_mode = min(graph, key=lambda m: _median(graph[m]["times"]))
        pt_mode = min(pt[model], key=lambda m: _median(pt[model][m]["times"]))
        said = decide_timing(
            pt[model][pt_mode]["times"],
            graph[tf_mode]["times"],
            (f"PyTorch {pt_mode}", f"TensorFlow {tf_mode}"),
            busy,
        )
        winners.append(said.winner)
        parts.append(f"{C4_MODELS[model]}: {said.reason}")
        for fw, d in (("pytorch", pt), ("tensorflow", tf)):
            text = _modes_text(d[model], lambda e: fmt_time(_median(e["times"])))
            figures[fw].append(f"{C4_MODELS[model]}: {text}")
    figures = {fw: "; ".join(v) for fw, v in figures.items()}
    where = f"on {accelerator}" if accelerator else "on the CPU"
    reason = f"Steady step {where}. " + " ".join(parts)
    if all(w == "b" for w in winners):
        outcome = SUPPORTED
    elif all(w == "a" for w in winners):
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
        if len(set(winners)) > 1:
            reason += " The models do not agree."
    return _verdict(
        "C4", outcome, reason, figures, "GPU use (utilisation)" if accelerator else PARTLY["C4"]
    )


def c5_training_memory(pt, tf):
    """C5 from each framework's ``MEMORY`` figures in its default training mode: the memory
    added by training (``train_delta``), or the allocator peaks when both ran on a GPU."""
    accel = pt.get("accelerator_peak") is not None and tf.get("accelerator_peak") is not None
    name = "accelerator_peak" if accel else "train_delta"
    label = "allocator peak" if accel else "added by training"
    said = memory_difference(tf[name], pt[name])
    figures = {
        fw: f"{label} {d[name]:.0f} MiB (process peak {d['train_peak']:.0f} MiB)"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    ratio = pt[name] / tf[name] if tf[name] else float("inf")
    quoted = C5_QUOTED["pytorch"] / C5_QUOTED["tensorflow"]
    reason = (
        f"{label}: TensorFlow {tf[name]:.0f} MiB vs PyTorch {pt[name]:.0f} MiB ({said}); "
        f"PyTorch/TensorFlow ratio {ratio:.2f} (the quoted figures: {quoted:.2f})."
    )
    outcome = {"lower": SUPPORTED, "higher": CONTRADICTED}.get(said, INCONCLUSIVE)
    return _verdict("C5", outcome, reason, figures, None if accel else PARTLY["C5"])


def c6_graph_memory(pt, tf):
    """C6 from the ``MEMORY`` figures of every mode (``{mode: MEMORY}``) of both frameworks:
    does a graph mode add less memory per steady training step than eager mode? ``steady_delta``
    is measured above the process after the first step, so the traced graph is left out."""
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
        f"Memory the steady steps added after the first one: TensorFlow graph "
        f"{tf['graph']['steady_delta']:.0f} vs eager {tf['eager']['steady_delta']:.0f} MiB "
        f"({tf_said}); PyTorch compiled vs eager: {pt_said}."
    )
    outcome = {"lower": SUPPORTED, "higher": CONTRADICTED}.get(tf_said, INCONCLUSIVE)
    return _verdict("C6", outcome, reason, figures, PARTLY["C6"])


def seed_to_seed_changes(accuracies):
    """Return how much the accuracy changes from one seed to the next, within one framework:
    ``|acc[i + 1] - acc[i]|`` for consecutive seeds."""
    return [abs(b - a) for a, b in zip(accuracies[:-1], accuracies[1:], strict=True)]


def c7_accuracy(pt, tf):
    """C7 from both frameworks' ``accuracy`` results (``{"seeds", "test_accuracy", "n_test"}``),
    trained from the same initial weights and batches for each seed: the per-seed difference
    between the frameworks against the change a new seed makes within a framework."""
    a, b = pt["test_accuracy"], tf["test_accuracy"]
    if len(a) < 2 or len(a) != len(b):
        return _verdict(
            "C7", INCONCLUSIVE, "At least two seeds, the same in both, are needed for a spread."
        )
    n = pt["n_test"]
    per_seed = [abs(x - y) for x, y in zip(a, b, strict=True)]
    change = statistics.median(seed_to_seed_changes(a) + seed_to_seed_changes(b))
    rounding = C7_ROUNDING_IMAGES / n
    figures = {
        fw: f"mean {statistics.mean(v):.4f} over {len(v)} seeds"
        for fw, v in (("pytorch", a), ("tensorflow", b))
    }
    reason = (
        f"Per-seed differences between the frameworks: largest {max(per_seed):.4f} "
        f"({round(max(per_seed) * n)} of {n} test images), median "
        f"{statistics.median(per_seed):.4f}; a new seed changes the accuracy by {change:.4f} "
        f"(median, within a framework); rounding allowance {C7_ROUNDING_IMAGES} images."
    )
    if all(d < change or d <= rounding + 1e-9 for d in per_seed):  # 1e-9: float ties
        return _verdict("C7", SUPPORTED, reason, figures)
    if statistics.median(per_seed) >= change and statistics.median(per_seed) > rounding + 1e-9:
        return _verdict("C7", CONTRADICTED, reason, figures)
    return _verdict("C7", INCONCLUSIVE, reason, figures)


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
    missing = PARTLY["C8"] if str(pt["device"]).startswith("cpu") else None
    if not pt["same_losses"]:
        outcome = INCONCLUSIVE
    elif n <= MINIMAL_LINES:
        outcome = SUPPORTED
    elif n > MANY_LINES:
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    return _verdict("C8", outcome, reason, figures, missing)


def op_comparison(pt_ops, tf_ops, busy=None):
    """Return ``{op: Decision}`` for every operation both measured (``{op: {"times"}}``, one
    figure per process): :func:`decide_timing` with PyTorch as "a", TensorFlow as "b"."""
    return {
        op: decide_timing(pt_ops[op]["times"], tf_ops[op]["times"], busy=busy)
        for op in pt_ops
        if op in tf_ops
    }


def _majority(decisions, who):
    """True when ``who`` ("a" or "b") is clearly faster on more than half of ``decisions``."""
    return sum(d.winner == who for d in decisions.values()) * 2 > len(decisions)


def c9_speed(pt_cpu, tf_cpu, pt_gpu=None, tf_gpu=None, busy=None):
    """C9 from the operation timings of both frameworks (``{op: {"times"}}``; the training step
    is one of the rows), on the CPU and, when both were measured there, on a GPU; each half is
    decided by the majority of its rows (:data:`RULES` ``C9``)."""
    cpu = op_comparison(pt_cpu, tf_cpu, busy)
    tf_wins = [op for op, d in cpu.items() if d.winner == "b"]
    pt_wins = [op for op, d in cpu.items() if d.winner == "a"]
    undecided = [op for op, d in cpu.items() if d.winner is None]
    figures = {
        "pytorch": f"CPU: clearly faster on {len(pt_wins)} of {len(cpu)}",
        "tensorflow": f"CPU: clearly faster on {len(tf_wins)} of {len(cpu)}",
    }
    reason = (
        f"CPU: TensorFlow clearly faster on {len(tf_wins)} of {len(cpu)} rows "
        f"({', '.join(tf_wins) or 'none'}), PyTorch on {len(pt_wins)} "
        f"({', '.join(pt_wins) or 'none'}), undecided {len(undecided)}; a majority needs more "
        f"than {len(cpu) // 2}."
    )
    if busy:
        reason = f"{busy} {reason}"
    if _majority(cpu, "b"):
        outcome = SUPPORTED
    elif _majority(cpu, "a"):
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    missing = PARTLY["C9"]
    if pt_gpu and tf_gpu:
        missing = None
        gpu = op_comparison(pt_gpu, tf_gpu, busy)
        gpu_pt = [op for op, d in gpu.items() if d.winner == "a"]
        gpu_tf = [op for op, d in gpu.items() if d.winner == "b"]
        reason += (
            f" GPU: PyTorch clearly faster on {len(gpu_pt)} of {len(gpu)} rows, TensorFlow on "
            f"{len(gpu_tf)}."
        )
        gpu_outcome = (
            SUPPORTED
            if _majority(gpu, "a")
            else (CONTRADICTED if _majority(gpu, "b") else INCONCLUSIVE)
        )
        if gpu_outcome != outcome:
            outcome = INCONCLUSIVE
            reason += " The two halves disagree."
    return _verdict("C9", outcome, reason, figures, missing)


def deployment_reached(pt_rows, tf_rows):
    """Return ``{framework: set of targets reached}`` from 06's rows, with every target of
    :data:`NEUTRAL_TARGETS` that either framework reached counted for both."""
    got = {
        fw: {r["target"] for r in rows if r.get("status") == "reached"}
        for fw, rows in (("pytorch", pt_rows), ("tensorflow", tf_rows))
    }
    neutral = (got["pytorch"] | got["tensorflow"]) & set(NEUTRAL_TARGETS)
    return {fw: targets | neutral for fw, targets in got.items()}


def c10_deployment(pt_rows, tf_rows):
    """C10 from the deployment targets each framework reached in 06 (:data:`UPSTREAM` ``C10``).

    Each argument is that track's ``deployment_targets`` record (rows of
    :mod:`course_utils.targets`: ``{"target", "status", "artifact", "evidence", "note"}``), or
    None when not recorded yet. Framework-neutral targets count for both
    (:func:`deployment_reached`); only the framework-specific ones can tell the two apart.
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
    reached = deployment_reached(pt_rows, tf_rows)
    specific = [t for t in targets.TARGETS if t not in NEUTRAL_TARGETS]
    only_tf = [t for t in specific if t in reached["tensorflow"] and t not in reached["pytorch"]]
    only_pt = [t for t in specific if t in reached["pytorch"] and t not in reached["tensorflow"]]
    total = len(targets.TARGETS)
    figures = {fw: f"{len(reached[fw])} of {total} targets reached" for fw in FRAMEWORKS}
    reason = (
        f"Reached: PyTorch {len(reached['pytorch'])}, TensorFlow {len(reached['tensorflow'])} of "
        f"{total} ({', '.join(NEUTRAL_TARGETS)} framework-neutral, counted for both). Of the "
        f"{len(specific)} framework-specific targets, only TensorFlow: "
        f"{', '.join(only_tf) or 'none'}; only PyTorch: {', '.join(only_pt) or 'none'}."
    )
    if only_tf and not only_pt:
        outcome = SUPPORTED
    elif only_pt and not only_tf:
        outcome = CONTRADICTED
    elif only_pt:
        outcome = INCONCLUSIVE
        reason += " Each reached a target the other did not."
    else:
        outcome = INCONCLUSIVE
        reason += " Neither reached a target the other did not: a tie on these targets."
    return _verdict("C10", outcome, reason, figures, PARTLY["C10"])


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


def c12_distributed(pt, tf, scripts=None):
    """C12 from each framework's counted scripts (``scripts``: ``{framework:
    distributed_scripts()}``, :func:`script_counts` per route) and 07's records (:data:`UPSTREAM`
    ``C12``: ``{record name: value}`` per framework, or None when not recorded yet), which say
    whether the distributed run matched one process. TensorFlow's shorter route counts."""
    names = UPSTREAM["C12"]["records"]
    if pt is None or tf is None:
        missing = [NAMES[fw] for fw, d in (("pytorch", pt), ("tensorflow", tf)) if d is None]
        return _verdict(
            "C12", NOT_MEASURED, f"No distributed figures recorded yet for {', '.join(missing)}."
        )
    if not scripts or not all(scripts.get(fw) for fw in FRAMEWORKS):
        return _verdict("C12", NOT_MEASURED, "The distributed scripts were not counted.")
    diff = {fw: d.get(names["matches"]) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    failed = [NAMES[fw] for fw, v in diff.items() if v is not None and abs(v) > DISTRIBUTED_ATOL]
    unknown = [NAMES[fw] for fw, v in diff.items() if v is None]
    best = {fw: min(scripts[fw], key=lambda r: scripts[fw][r]["changed"]) for fw in FRAMEWORKS}
    lines = {fw: scripts[fw][best[fw]]["changed"] for fw in FRAMEWORKS}

    def routes(fw):
        return "; ".join(
            f"{r}: {c['single']} -> {c['distributed']} lines, {c['changed']} changed"
            for r, c in scripts[fw].items()
        )

    figures = {fw: routes(fw) for fw in FRAMEWORKS}
    parity = (
        f"07's distributed run did not match one process in {', '.join(failed)}"
        if failed
        else f"07's distributed runs matched one process to {DISTRIBUTED_ATOL:g}"
        + (f" (not recorded for {', '.join(unknown)})" if unknown else "")
    )
    reason = (
        f"Whole scripts, one process to data-parallel: PyTorch ({best['pytorch']}) changes "
        f"{lines['pytorch']} lines, TensorFlow's shorter route ({best['tensorflow']}) "
        f"{lines['tensorflow']}. {parity}."
    )
    if failed:
        outcome = INCONCLUSIVE
    elif lines["tensorflow"] - lines["pytorch"] >= DISTRIBUTED_MARGIN_LINES:
        outcome = SUPPORTED
    elif lines["pytorch"] - lines["tensorflow"] >= DISTRIBUTED_MARGIN_LINES:
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    return _verdict("C12", outcome, reason, figures, PARTLY["C12"])


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


def upstream_verdict(claim, figures, scripts=None):
    """Return the verdict of C10 or C12 from :func:`upstream`'s figures (C12 also needs the
    counted ``scripts``, ``{framework: distributed_scripts()}``)."""
    if claim == "C10":
        key = UPSTREAM["C10"]["records"]["targets"]
        rows = [(figures[fw] or {}).get(key) for fw in FRAMEWORKS]
        return c10_deployment(*rows)
    return c12_distributed(figures["pytorch"], figures["tensorflow"], scripts)


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
        c4_large_models(c4_timings(pt), c4_timings(tf), accel, busy=busy),
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
    scripts = {fw: r["demos"].get("c12") for fw, r in (("pytorch", pt), ("tensorflow", tf))}
    verdicts.append(upstream_verdict("C12", upstream_figures.get("C12") or _nothing(), scripts))
    verdicts.append(c13_hub(hub))
    return verdicts


def c4_timings(result):
    """Return ``{model: {mode: TIMING}}`` of the models C4 uses (:data:`C4_MODELS`) in one
    framework's result."""
    return {m: result["timing"][m] for m in C4_MODELS if m in result["timing"]}


def cpu_rows(results):
    """Return ``(pytorch rows, tensorflow rows)``: C9's operation table on the CPU, plus the large
    model's training step in each framework's default mode (left out when the steps ran on an
    accelerator)."""
    rows = []
    for fw in FRAMEWORKS:
        r = results[fw]
        found = dict(r["ops"]["cpu"])
        if not r["setup"].get("accelerator"):
            found["training step"] = r["timing"]["large"][DEFAULT_MODE[fw]]
        rows.append(found)
    return tuple(rows)


def repeat(times=3, quick=True, threads=None, progress=False, upstream_figures=None):
    """Run the lab's measurements ``times`` times (fresh processes each time) and return
    ``{claim: [outcome, ...]}`` with the verdicts of every run, printing one line per claim.

    The stability check of the lab: on one idle machine no claim may flip between supported and
    contradicted. Each run's busy check is printed too, so a loaded machine shows as such.
    """
    from . import claims_worker

    plan = settings(quick=quick, threads=threads)
    upstream_figures = upstream_figures or {c: upstream(c) for c in ("C10", "C12")}
    seen = {c: [] for c in CLAIMS}
    for i in range(times):
        results = claims_worker.measure(plan, progress=progress)
        busy = machine_busy(results)
        print(f"run {i + 1} of {times}: {busy or 'the machine was not busy while timing'}")
        for v in assess(results, upstream_figures):
            seen[v.claim].append(v.outcome)
    for claim, outcomes in seen.items():
        flip = SUPPORTED in outcomes and CONTRADICTED in outcomes
        print(
            f"{claim:>3} {CLAIMS[claim].title:<44} {' | '.join(outcomes)}"
            + ("  <- FLIPS" if flip else "")
        )
    flips = [c for c, o in seen.items() if SUPPORTED in o and CONTRADICTED in o]
    print("claims that flip between supported and contradicted:", ", ".join(flips) or "none")
    return seen


def _nothing():
    return {"source": "not read", "pytorch": None, "tensorflow": None}


def setup_line(framework, setup):
    """Return one line saying how a framework was measured: version, device, threads, kernel
    libraries, and (when ``setup`` has them) the other programs' CPU use its process saw."""
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

    def block(text, hang=2):
        return textwrap.fill(
            text, width, initial_indent=" " * 5, subsequent_indent=" " * (5 + hang)
        )

    lines = []
    for v in verdicts:
        lines.append(f"{v.claim:>3}  {CLAIMS[v.claim].title:<44} {v.label}")
        lines += [block(f"{NAMES[fw]}: {v.figures[fw]}") for fw in FRAMEWORKS if v.figures.get(fw)]
        lines.append(block(v.reason, hang=0))
        if v.missing and v.outcome not in (NOT_MEASURABLE, NOT_MEASURED):
            lines.append(block(f"not measured here: {v.missing}"))
    return "\n".join(lines)


def summary_table(verdicts):
    """Return the verdict table in one line per claim: claim, title, outcome (and "partly
    measured" where part of the claim could not be measured here)."""
    return "\n".join(f"{v.claim:>3}  {CLAIMS[v.claim].title:<44} {v.label}" for v in verdicts)


def outcome_counts(verdicts):
    """Return ``{outcome: how many claims}`` for every outcome, in :data:`OUTCOMES` order, and
    ``"partly measured"``: how many of the decided ones were measured only in part."""
    counts = {o: sum(v.outcome == o for v in verdicts) for o in OUTCOMES}
    counts["partly measured"] = sum(v.label.endswith("partly measured") for v in verdicts)
    return counts


def plot_data(results):
    """Return the numbers behind the plots of the quantitative claims (JSON-ready), from the
    harness's results: C3/C4 step spreads between processes (lowest, median, highest) per mode,
    C5/C6 memory, C7 accuracies, C9 ops."""
    pt, tf = results["pytorch"], results["tensorflow"]
    both = (("pytorch", pt), ("tensorflow", tf))
    data = {
        "C3": {
            fw: {m: spread(e["times"]) for m, e in r["timing"]["small"].items()} for fw, r in both
        },
        "C4": {
            fw: {
                f"{model} {m}": spread(e["times"])
                for model in C4_MODELS
                for m, e in r["timing"].get(model, {}).items()
            }
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
                fw: [spread(r["ops"]["cpu"][op]["times"]) for op in pt["ops"]["cpu"]]
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
            for mode in d[fw]:
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
        what = "small MLP" if claim == "C3" else "large MLP and small CNN"
        ax.set_title(f"{claim}: {what}, median and range over processes")
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
    """Return a text table of one model's training step in every mode of both frameworks, over
    the timing processes: median first call, median step with its range between processes, and
    for graph modes the break-even step count against that framework's eager step
    (:func:`course_utils.compiling.break_even_steps`, from the medians)."""
    from .compiling import break_even_steps

    head = (
        f"{'':<11} {'mode':<9} {'first call':>11} {'median step':>12} "
        f"{'range over processes':>22} {'break-even':>11}"
    )
    lines = [head]
    for fw in FRAMEWORKS:
        modes = results[fw]["timing"][size]
        eager = _median(modes["eager"]["times"])
        for mode, e in modes.items():
            lo, med, hi = spread(e["times"])
            first = _median(e["first_s"])
            if mode == "eager":
                even = "-"
            else:
                n = break_even_steps(first, eager, med)
                even = f"{n} steps" if n else "never"
            span = f"{fmt_time(lo)}-{fmt_time(hi)}"
            lines.append(
                f"{NAMES[fw]:<11} {mode:<9} {fmt_time(first):>11} {fmt_time(med):>12} "
                f"{span:>22} {even:>11}"
            )
    return "\n".join(lines)


def memory_table(results):
    """Return a text table of the training-memory figures (MiB) of every mode measured."""
    head = (
        f"{'':<11} {'mode':<9} {'runtime':>8} {'1st step':>9} {'steady':>8} {'peak':>8} "
        f"{'allocator':>10}"
    )
    lines = [
        head,
        f"{'':<21}(MiB: after imports, data and model; added by the first step; added by later",
        f"{'':<21} steps above the process after the first; peak; allocator peak on a GPU)",
    ]
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


def ops_table(pt_ops, tf_ops, busy=None):
    """Return a text table of operation times in both frameworks (``{op: {"times"}}`` each, one
    figure per process): median and range between processes, and which framework the timing
    rule (:func:`decide_timing`) calls clearly faster, or why neither."""
    said = op_comparison(pt_ops, tf_ops, busy)
    lines = [f"{'operation':<32} {'PyTorch':>22} {'TensorFlow':>22}  clearly faster"]
    for op, d in said.items():
        cells = []
        for ops in (pt_ops, tf_ops):
            lo, med, hi = spread(ops[op]["times"])
            cells.append(f"{fmt_time(med)} ({fmt_time(lo)}-{fmt_time(hi)})")
        who = {"a": "PyTorch", "b": "TensorFlow"}.get(d.winner)
        if who is None:
            why = d.reason.rsplit(": ", 1)[-1].rstrip(".")
            who = "neither: " + ("busy machine" if busy else why)
        label = OP_LABELS.get(op, op)
        lines.append(f"{label:<32} {cells[0]:>22} {cells[1]:>22}  {who}")
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

    from .plots import png

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
        if v.get("missing") and verdict not in (NOT_MEASURABLE, NOT_MEASURED):
            verdict += f", partly measured (not measured here: {v['missing']})"
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
            png = png(plot(claim, main["plots"]))
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

"""What both framework sides of the claims lab share (:mod:`course_utils.claims_torch` and
:mod:`course_utils.claims_tf` read it as ``claims``): the measurement plan (:func:`settings`), the
models' layer specs and fixed inputs, the C2 debugging layer, and the demonstration helpers
(scripted pdb sessions, counting changed lines of code, the size of a PyTorch graph). Imports no
framework.
"""

import contextlib
import difflib
import inspect
import io
import os
import sys
import textwrap

import numpy as np

from .catalogue import MIN_PROCESSES

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
    from ..training import Layer

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

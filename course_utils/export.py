"""Helpers for comparing exported models: sizes, output differences, LiteRT and ExecuTorch runs,
parity tables.

Nothing here imports PyTorch or TensorFlow at module level; each helper imports what it needs.
"""

import contextlib
import ctypes
import io
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from . import records

KIB = 1024


def artifact_size(path):
    """Return the size in bytes of an artifact: a file, or every file under a folder (a SavedModel).

    ``path`` may also be a list of paths (a model file and its external-data file); their sizes
    are added up.
    """
    if isinstance(path, list | tuple):
        return sum(artifact_size(p) for p in path)
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def strip_stack_traces(target):
    """Remove the Python stack traces an exporter stores beside each operator.

    ``target`` is the path of an ONNX file (rewritten in place) or an in-memory
    ``torch.export.ExportedProgram`` (changed in place: strip it before ``torch.export.save``).

    Both exporters keep, for every operator, the stack of Python lines that produced it, with
    the absolute paths of the files on the machine that exported it: PyTorch's own modules
    under wherever PyTorch is installed, the notebook's cell (``/tmp/ipykernel_<pid>/...``). The
    file's bytes and size then depend on where the code was checked out and which process ran
    it, and a shipped model tells who built it where. The graph, the weights and the other
    metadata are kept. Returns how many operators held a stack trace.
    """
    if hasattr(target, "graph_module"):  # a torch.export.ExportedProgram
        stripped = 0
        for module in target.graph_module.modules():
            graph = getattr(module, "graph", None)
            for node in graph.nodes if graph is not None else ():
                if node.meta.pop("stack_trace", None) is not None:
                    stripped += 1
        return stripped

    import onnx

    if not Path(target).is_file():
        raise FileNotFoundError(f"strip_stack_traces: no ONNX file at {target}")
    model = onnx.load(target)
    stripped = 0
    graphs = [model.graph, *model.functions]
    for graph in graphs:
        for node in graph.node:
            kept = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
            if len(kept) < len(node.metadata_props):
                stripped += 1
                del node.metadata_props[:]
                node.metadata_props.extend(kept)
    onnx.save(model, target)
    return stripped


def max_abs_diff(a, b):
    """Return ``max |a - b|`` as a Python float (both converted to float64 NumPy arrays first)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


FLOAT32_RESOLUTION = 1e-5  # float32 rounding of the logits: below it, CPUs disagree on the digits


def diff_line(label, diff, tol, resolution=FLOAT32_RESOLUTION):
    """Return ``"max |label|: <diff> | agree (threshold <tol>)"`` (or ``differ``).

    A difference below ``resolution`` is float32 rounding, whose digits change from CPU to CPU
    (0.0 on one, 4.8e-06 on another): it is shown as ``below <resolution>``, not as digits.
    """
    word = "agree" if diff < tol else "differ"
    return f"max |{label}|: {records.shown(diff, resolution)} | {word} (threshold {tol:.0e})"


def accuracy(scores, labels):
    """Return the fraction of rows of ``scores`` whose argmax equals ``labels`` (a Python float)."""
    return float(np.mean(np.asarray(scores).argmax(axis=1) == np.asarray(labels)))


def argmax_agreement(a, b):
    """Return the fraction of rows where ``a`` and ``b`` pick the same class (a Python float)."""
    return float(np.mean(np.asarray(a).argmax(axis=1) == np.asarray(b).argmax(axis=1)))


@contextlib.contextmanager
def quiet_native():
    """Silence a noisy export or conversion: Python warnings, log records, and C/C++ output.

    Exporters and converters print progress lines from C++ straight to the process's file
    descriptors 1 and 2, which Jupyter shows in the cell's output. Inside this block those
    descriptors point at ``/dev/null``, Python's ``sys.stdout``/``sys.stderr`` are captured and
    dropped, warnings are ignored and logging is disabled. Errors
    still reach you as Python exceptions.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:  # no real descriptors (some embedded interpreters): skip that part
        pass
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)  # C stdio buffers out before the descriptors return
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def litert_predictor(model):
    """Return ``predict(X) -> scores`` running a TFLite/LiteRT model (bytes or a ``.tflite`` path).

    Uses ``ai_edge_litert.interpreter.Interpreter`` (``tf.lite.Interpreter`` is deprecated).
    The input is resized to ``X``'s batch size when it changes. Integer-quantized inputs and
    outputs are quantized and dequantized with the model's own scale and zero point, so
    ``predict`` always takes and returns float32 arrays.
    """
    from ai_edge_litert.interpreter import Interpreter

    content = Path(model).read_bytes() if isinstance(model, str | Path) else bytes(model)
    with quiet_native():
        interpreter = Interpreter(model_content=content)
    inp = interpreter.get_input_details()[0]
    out_index = interpreter.get_output_details()[0]["index"]
    state = {"shape": None}

    def predict(X):
        X = np.asarray(X, dtype=np.float32)
        if state["shape"] != X.shape:
            interpreter.resize_tensor_input(inp["index"], list(X.shape))
            with quiet_native():
                interpreter.allocate_tensors()
            state["shape"] = X.shape
        scale, zero = inp["quantization"]
        if np.issubdtype(inp["dtype"], np.integer) and scale:
            X = np.round(X / scale + zero).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], X)
        interpreter.invoke()
        detail = interpreter.get_output_details()[0]
        Y = interpreter.get_tensor(out_index).copy()
        scale, zero = detail["quantization"]
        if np.issubdtype(detail["dtype"], np.integer) and scale:
            Y = (Y.astype(np.float32) - zero) * scale
        return Y.astype(np.float32)

    return predict


def why_no_executorch():
    """Return why ExecuTorch cannot be used here (a sentence), or None when it can.

    ExecuTorch's wheels are built against one PyTorch release (executorch 1.5 against torch
    2.13): installed beside another torch (Colab's, say), its compiled parts fail to load.
    """
    try:
        with quiet_native():  # torchao reports which optional GPU kernels it skipped
            import executorch.exir  # noqa: F401
            import executorch.runtime  # noqa: F401
    except ImportError as err:
        import torch

        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        return (
            f"ExecuTorch does not import beside torch {torch.__version__} "
            f"({type(err).__name__}: {first}); it is the course's `edge` extra "
            "(executorch 1.5, built for torch 2.13)."
        )
    return None


def executorch_predictor(program, method="forward"):
    """Return ``predict(X) -> scores`` running an ExecuTorch program (``.pte`` bytes or a path).

    Uses ``executorch.runtime.Runtime``: the ExecuTorch C++ runtime, with the backends it was
    built with (XNNPACK among them), called from Python. ``predict`` takes a float32 array (or a
    tensor) and returns a float32 NumPy array. The program's batch dimension must allow
    ``len(X)`` rows: ExecuTorch plans its memory for the upper bound given at export.
    """
    import torch
    from executorch.runtime import Runtime

    data = Path(program).read_bytes() if isinstance(program, str | Path) else bytes(program)
    with quiet_native():  # the runtime reports what it reads about the CPU, from C++
        loaded = Runtime.get().load_program(data)
        forward = loaded.load_method(method)

    def predict(X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return forward.execute([X])[0].numpy()

    # The runtime reads the program in place: its bytes and the program object must live as
    # long as the method does (freed too early, the runtime reads freed memory and crashes).
    predict.keep_alive = (data, loaded)

    return predict


def example_share(n, examples=1):
    """Return the tolerance of an accuracy measured on ``n`` examples: ``examples`` of them.

    An accuracy (or an accuracy change) on another CPU may differ by whole examples, when a
    near-tie between two classes falls the other way. The value returned is ``(examples + 0.5)
    / n``: half an example more, so that rounding in the recorded fractions never matters.
    """
    return (examples + 0.5) / n


def parity_row(
    name,
    outputs,
    reference,
    labels,
    *,
    path=None,
    latency=None,
    threshold=1e-5,
    same_class_floor=0.98,
    accuracy_margin=0.02,
):
    """Return one row of a parity table (a dict) for an artifact's ``outputs`` on the test set.

    Keys: ``artifact``, ``max_abs_diff`` (vs ``reference``), ``within`` (max diff below
    ``threshold``), ``threshold``, ``argmax_agree`` (fraction of rows with the same class as the
    reference), ``same_class_ok`` (that fraction at least ``same_class_floor``), ``accuracy``
    (vs ``labels``), ``accuracy_change`` (minus the reference's accuracy), ``accuracy_ok`` (the
    change within ``accuracy_margin``), ``size_bytes`` (None without ``path``) and
    ``latency_s`` (a median in seconds, or None). The ``..._ok`` verdicts and ``within`` hold on
    any CPU when the figures are well inside their bounds; the figures themselves do not.
    """
    diff = max_abs_diff(outputs, reference)
    agree = argmax_agreement(outputs, reference)
    acc = accuracy(outputs, labels)
    change = acc - accuracy(reference, labels)
    return {
        "artifact": name,
        "max_abs_diff": diff,
        "within": diff < threshold,
        "threshold": threshold,
        "argmax_agree": agree,
        "same_class_ok": agree >= same_class_floor,
        "accuracy": acc,
        "accuracy_change": change,
        "accuracy_ok": abs(change) <= accuracy_margin + 1e-12,
        "size_bytes": None if path is None else artifact_size(path),
        "latency_s": latency,
    }


def format_table(rows, columns):
    """Return a plain-text table of ``rows`` (dicts); ``columns`` is a list of (key, header, fmt).

    ``fmt`` is a format spec such as ``".4f"`` or a function of the value; None shows as ``-``.
    """

    def cell(value, fmt):
        if value is None:
            return "-"
        return fmt(value) if callable(fmt) else format(value, fmt)

    table = [[header for _, header, _ in columns]]
    table += [[cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)) for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _yes(value):
    return str(bool(value))


STABLE_COLUMNS = [  # verdicts: the same on any CPU
    ("artifact", "artifact", "s"),
    ("within", "max diff < threshold", _yes),
    ("threshold", "threshold", ".0e"),
    ("same_class_ok", "same class >= 98%", _yes),
    ("accuracy_ok", "accuracy within 0.02", _yes),
]
MEASURED_COLUMNS = [  # figures: they depend on the CPU (and latency on the moment)
    ("artifact", "artifact", "s"),
    ("max_abs_diff", "max |diff|", ".2e"),
    ("argmax_agree", "same class", ".3f"),
    ("accuracy_change", "accuracy change", "+.3f"),
    ("size_bytes", "size (KiB)", lambda v: f"{v / KIB:.1f}"),
    ("latency_s", "latency (ms)", lambda v: f"{v * 1e3:.3f}"),
]


def plot_artifacts(rows, title=None):
    """Draw two bar charts side by side, artifact size (KiB) and median latency (ms); return the figure."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("size_bytes") is not None]
    names = [r["artifact"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.barh(names, [r["size_bytes"] / KIB for r in rows], color="tab:blue")
    left.set_xlabel("artifact size (KiB)")
    left.invert_yaxis()
    right.barh(names, [(r["latency_s"] or 0) * 1e3 for r in rows], color="tab:orange")
    right.set_xlabel("median latency on the test set (ms)")
    right.invert_yaxis()
    right.tick_params(labelleft=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def int8_output_qparams(artifact):
    """Return ``(scale, zero_point, qmin, qmax)`` of a quantized model's int8 output.

    ``artifact`` is a LiteRT ``.tflite`` path or bytes (the int8 tensor that the model's last
    op writes, before any dequantize) or a PT2E-converted ``GraphModule`` (the last
    ``quantize_per_tensor`` node). Raises ValueError if there is none.
    """
    if hasattr(artifact, "graph"):  # a torch.fx GraphModule from convert_pt2e
        nodes = [
            n
            for n in artifact.graph.nodes
            if n.op == "call_function"
            and str(n.target).endswith("quantize_per_tensor.default")
            and "dequantize" not in str(n.target)
        ]
        if not nodes:
            raise ValueError("no quantize_per_tensor node in this graph")
        scale, zero_point, qmin, qmax = nodes[-1].args[1:5]
        return float(scale), int(zero_point), int(qmin), int(qmax)
    from ai_edge_litert.interpreter import Interpreter

    data = Path(artifact).read_bytes() if isinstance(artifact, str | Path) else bytes(artifact)
    with quiet_native():
        interpreter = Interpreter(model_content=data)
    n_out = int(interpreter.get_output_details()[0]["shape"][-1])
    candidates = [
        d
        for d in interpreter.get_tensor_details()
        if d["dtype"] == np.int8
        and len(d["shape"]) == 2
        and d["shape"][-1] == n_out
        and d["quantization"][0] > 0
    ]
    if not candidates:
        raise ValueError("no int8 output tensor with a scale in this model")
    scale, zero_point = candidates[-1]["quantization"]
    return float(scale), int(zero_point), -128, 127


def saturation(outputs, reference, scale, zero_point, qmin=-128, qmax=127):
    """Split an int8 model's error into clipping and rounding, from its output's scale.

    The int8 output can only hold ``[(qmin - zero_point) * scale, (qmax - zero_point) * scale]``:
    a reference value outside that range (the calibration rows never reached it) is clipped.
    Returns ``low``, ``high``, ``outside`` (how many reference values fall outside),
    ``clipped_by`` (the largest distance outside), ``inside_steps`` (the largest difference
    where the reference is inside, in output steps) and ``max_diff``.
    """
    outputs, reference = np.asarray(outputs, np.float64), np.asarray(reference, np.float64)
    low, high = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    inside = (reference >= low) & (reference <= high)
    diff = np.abs(outputs - reference)
    distance = np.maximum(low - reference, reference - high)
    return {
        "low": low,
        "high": high,
        "outside": int((~inside).sum()),
        "clipped_by": float(distance[~inside].max()) if (~inside).any() else 0.0,
        "inside_steps": float(diff[inside].max() / scale) if inside.any() else 0.0,
        "max_diff": float(diff.max()),
    }

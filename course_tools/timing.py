"""Where the time goes: the slowest notebooks, cells and tests, and what each spends it on.

``course run`` ends with :func:`run_summary` (from papermill's per-cell durations in the executed
copies), and ``course test`` with the same tables for its tests (the pytest plugin in
:mod:`course_tools.test_timing`). A cell is put under one heading by what its code does, first
match wins: work in framework worker processes (their start-up and what they run), compiling or
exporting, measuring, training, importing the frameworks; the rest is "lesson code". What a
notebook spends outside its cells is
"kernel start-up" (a Python process, IPython, the kernel's imports before the first cell).
"""

import json
import re
from collections import defaultdict
from pathlib import Path

KINDS = (
    (
        "worker processes",
        r"distributed\.(launch|pool|start|torch_pool|tf_pool|run_)|claims(_worker)?\.(run|measure|repeat)"
        r"|subprocess|Popen|torchrun|\.spawn\(|interop\.(start_|fresh|deliver|keras_imports)"
        r"|_PROBE\b|Workers\(",
    ),
    (
        "compilation",
        r"torch\.compile|jit_compile|tf\.function|torch\.export|\.export\(|aoti_|to_edge"
        r"|tf2onnx|onnx\.export|TFLiteConverter|convert\(",
    ),
    ("measurement", r"bench\.|timeit|perf_counter|\.time_\w+\("),
    ("training", r"\.fit\(|train\w*\(|optimizer\.step|apply_gradients"),
    ("imports", r"^\s*(import|from)\s+(torch|tensorflow|keras|onnx\w*|tf2onnx)\b"),
)
OTHER = "lesson code"
# A cell that times something, or compares speeds, runs alone in `course run` (runner.Gate):
# tests/test_fair.py's rule for a timed cell (the bench helpers, any time_* helper, a clock),
# plus the speed settings a comparison prints and the claims lab's measurement in workers.
TIMES = re.compile(
    r"\bcu\.bench\.|\bbench\.(time|measure|compare)|\.time_\w+\(|perf_counter|timeit"
    r"|speed_settings\(|claims_worker\.measure"
)
STARTUP = "kernel start-up"
WAITING = "waiting while a timed cell ran alone"  # course run: runner.Gate


def kind_of(source):
    """Return the heading a cell's time goes under (see the module's docstring)."""
    for kind, pattern in KINDS:
        if re.search(pattern, source, re.M):
            return kind
    return OTHER


def first_line(source, width=60):
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def cell_times(path):
    """Return ``(total seconds, [(code cell index, seconds, source)])`` of an executed notebook."""
    nb = json.loads(Path(path).read_text())
    cells, index = [], 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" not in tags:
            duration = (cell.get("metadata", {}).get("papermill") or {}).get("duration")
            cells.append((index, float(duration or 0.0), "".join(cell.get("source", ""))))
            index += 1
    total = (nb.get("metadata", {}).get("papermill") or {}).get("duration")
    return (float(total) if total else sum(c[1] for c in cells)), cells


def breakdown(total, cells):
    """Return ``{heading: seconds}`` for one notebook, kernel start-up included."""
    spent = defaultdict(float)
    for _, seconds, source in cells:
        spent[kind_of(source)] += seconds
    spent[STARTUP] = max(0.0, total - sum(c[1] for c in cells))
    return dict(spent)


def _parts(spent, total):
    order = sorted(spent.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0f} s" for k, v in order if v >= max(0.5, 0.05 * total))


def run_summary(outcomes, n=10):
    """Return the text of the slowest ``n`` notebooks and cells of a ``course run``."""
    notebooks, cells, totals = [], [], defaultdict(float)
    for outcome in outcomes:
        if not Path(outcome.output).is_file():
            continue
        total, timed = cell_times(outcome.output)
        total = max(total, outcome.seconds)  # the runner's clock includes papermill's own work
        timed = [(i, max(0.0, s - outcome.waits.get(i, 0.0)), src) for i, s, src in timed]
        waited = outcome.waited
        spent = breakdown(total - waited, timed)
        if waited:
            spent[WAITING] = waited
        for k, v in spent.items():
            totals[k] += v
        notebooks.append((total, outcome.entry.key, spent))
        cells += [(s, outcome.entry.key, i, kind_of(src), first_line(src)) for i, s, src in timed]
    if not notebooks:
        return ""
    lines = [f"The {min(n, len(notebooks))} slowest notebooks, and what they spent it on:"]
    for total, key, spent in sorted(notebooks, key=lambda t: -t[0])[:n]:
        lines.append(f"  {total:6.1f} s  {key:34} {_parts(spent, total)}")
    lines.append(f"The {min(n, len(cells))} slowest cells:")
    for seconds, key, index, kind, text in sorted(cells, key=lambda t: -t[0])[:n]:
        lines.append(f"  {seconds:6.1f} s  {key:34} cell {index:<3} {kind:16} {text}")
    whole = sum(totals.values())
    lines.append(f"All {len(notebooks)} notebooks: {whole:.0f} s; {_parts(totals, whole)}.")
    return "\n".join(lines)


def timed_cell(source):
    """Return whether a cell times something (see ``TIMES``): under ``course run`` it runs alone."""
    return bool(TIMES.search(source))

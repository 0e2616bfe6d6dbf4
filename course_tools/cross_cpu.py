"""Which notebooks the test command re-executes under other CPU kernels: a rule on their outputs.

float32 results differ between CPUs (AVX2, AVX-512, AMX; Intel or AMD) in their 6th–7th
significant digit. What nbval compares can only change with the CPU's kernels where a compared
output (a cell not tagged ``nbval-ignore-output`` or ``nbval-skip``) holds

- a float printed with :data:`SIGNIFICANT` or more significant digits (outside a course record,
  which declares its own tolerance), or
- a nonzero float printed in e-notation below :data:`ROUNDING` (``3.0e-08``): at that size a
  difference is float32 rounding, whose digits are the kernels' (print it as ``below 1e-06``,
  :func:`course_utils.records.shown`), or
- a float (printed, or a record's value) from a cell that compiles or exports a model
  (``timing.KINDS``'s "compilation" code: ``torch.compile``, ``jit_compile``, ``torch.export``,
  converters): a compiled kernel is chosen for the CPU at hand.

Such a notebook is re-executed up to its last such cell, and no further: the cells after it
hold no compared output that the kernels can change, and run as they did in the main pass
(loaded as a pytest plugin, ``-p course_tools.cross_cpu``, this module deselects them). A
notebook whose compared outputs hold no such float, as every solution notebook's check results,
cannot change with the kernels: each check compares results computed on the same kernels. Its
twin is not re-executed for its sake: the rule reads each notebook's own outputs.
"""

import json
import re
from pathlib import Path

from .timing import KINDS

SIGNIFICANT = 6
ROUNDING = 1e-5  # float32 rounding of values around 1: its digits change with the kernels
RECORD = "application/vnd.course-record+json"
SETS = ("notebooks", "solutions")
_NUMBER = re.compile(r"(?<![\w.])-?(\d+)\.(\d+)(?:[eE][-+]?\d+)?(?![\w]|\.\d)")
_COMPILES = re.compile(dict(KINDS)["compilation"], re.M)
_SKIPPED = {"nbval-ignore-output", "nbval-skip"}


def _has_float(value):
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _tiny(number):
    return 0.0 < abs(float(number)) < ROUNDING


def _text(output):
    text = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
    return "".join(text) if isinstance(text, list) else text


def reasons(path):
    """Return why a stored notebook depends on the CPU's kernels: ``[(code cell index, why)]``."""
    nb = json.loads(Path(path).read_text())
    found, index = [], 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        source = "".join(cell.get("source", ""))
        compiles = bool(_COMPILES.search(source))
        for output in [] if tags & _SKIPPED else cell.get("outputs", []):
            record = (output.get("data") or {}).get(RECORD)
            if record is not None:
                if compiles and _has_float(record.get("value")):
                    found.append((index, f"record {record.get('name')} from compiled code"))
                continue
            numbers = list(_NUMBER.finditer(_text(output)))
            long = [m.group(0) for m in numbers if len((m[1] + m[2]).lstrip("0")) >= SIGNIFICANT]
            tiny = [m.group(0) for m in numbers if "e" in m.group(0).lower() and _tiny(m.group(0))]
            if long:
                found.append((index, f"prints {long[0]} ({SIGNIFICANT}+ significant digits)"))
            elif tiny:
                found.append((index, f"prints {tiny[0]} (float32 rounding's size)"))
            elif numbers and compiles:
                found.append((index, f"prints {numbers[0].group(0)} from compiled code"))
        index += 1
    return found


def select(root):
    """Return the folders' notebooks to re-execute under other kernels, as paths relative to
    ``root`` (``notebooks/04_eager_vs_compiled/pytorch.ipynb``): those with a :func:`reasons`."""
    root = Path(root)
    return [
        path.relative_to(root).as_posix()
        for s in SETS
        for path in sorted((root / s).glob("*/*.ipynb"))
        if reasons(path)
    ]


def last_cell(path):
    """Return the index of the last code cell of ``path`` whose compared output can change with
    the kernels (nbval's ``Cell N``), or None where none can."""
    found = reasons(path)
    return max(index for index, _ in found) if found else None


# ---------------------------------------------------------------- as a pytest plugin

_CUT = {}  # notebook path -> (last cell re-run, code cells in all), for the summary


def pytest_collection_modifyitems(config, items):
    """Deselect every nbval cell after its notebook's :func:`last_cell` (the whole notebook where
    it has none): only what the kernels can change is executed again."""
    last, keep, drop = {}, [], []
    for item in items:
        path, number = getattr(item, "path", None), getattr(item, "cell_num", None)
        if number is None or path is None or path.suffix != ".ipynb":
            keep.append(item)
            continue
        if path not in last:
            last[path] = last_cell(path)
        cut = last[path]
        (keep if cut is not None and number <= cut else drop).append(item)
        _CUT[path] = (cut, max(_CUT.get(path, (None, 0))[1], number + 1))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter):
    """Say which cells the pass left out, and why."""
    cut = {p: c for p, c in _CUT.items() if c[0] is None or c[0] + 1 < c[1]}
    if not cut:
        return
    write = terminalreporter.write_line
    write("Cells not re-run: after the last one whose compared output the kernels can change")
    for path, (last, total) in sorted(cut.items()):
        kept = "none" if last is None else f"cells 0-{last}"
        write(f"  {path.parent.name}/{path.name}: {kept} of {total} re-run")

"""A pytest plugin: ``course test`` ends with its ten slowest files and tests, and why.

Load it with ``-p course_tools.test_timing``. It reads the durations pytest reports (with
pytest-xdist, the controller receives every worker's reports), sums them per file, and names
what each nbval cell spends its time on with :func:`course_tools.timing.kind_of` (a notebook's
kernel start-up is the setup of its first cell). Unit tests count as "test" time; the slowest of
them are usually the ones that execute notebooks or start JupyterLab, a browser or a sandbox.
"""

import json
import re
from collections import defaultdict
from pathlib import Path

from . import timing

N = 10
_DURATIONS = defaultdict(float)  # nodeid -> seconds (setup + call + teardown)
_SETUP = defaultdict(float)  # nodeid -> setup seconds


def pytest_runtest_logreport(report):
    _DURATIONS[report.nodeid] += report.duration
    if report.when == "setup":
        _SETUP[report.nodeid] += report.duration


_CODE_CELLS = {}


def _cell_source(path, index):
    if path not in _CODE_CELLS:
        try:
            nb = json.loads(Path(path).read_text())
            _CODE_CELLS[path] = [
                "".join(c.get("source", "")) for c in nb["cells"] if c["cell_type"] == "code"
            ]
        except (OSError, ValueError, KeyError):
            _CODE_CELLS[path] = []
    cells = _CODE_CELLS[path]
    return cells[index] if index < len(cells) else ""


def _kind(nodeid):
    """Return (file, what the item spent its time on, a short label) of one test id."""
    path, _, name = nodeid.partition("::")
    match = re.fullmatch(r"Cell (\d+)", name)
    if not path.endswith(".ipynb") or not match:
        return path, "test", name
    source = _cell_source(path, int(match.group(1)))
    return path, timing.kind_of(source), f"{name}: {timing.first_line(source, 50)}"


def summary():
    """Return the lines of the slowest files and tests seen so far."""
    if not _DURATIONS:
        return []
    files = defaultdict(lambda: defaultdict(float))
    items = []
    for nodeid, seconds in _DURATIONS.items():
        path, kind, label = _kind(nodeid)
        setup = _SETUP.get(nodeid, 0.0) if path.endswith(".ipynb") else 0.0
        if setup:
            files[path][timing.STARTUP] += setup
        files[path][kind] += seconds - setup
        items.append((seconds, path, kind, label))
    lines = [f"The {min(N, len(files))} slowest test files, and what they spent it on:"]
    ranked = sorted(files.items(), key=lambda kv: -sum(kv[1].values()))
    for path, spent in ranked[:N]:
        total = sum(spent.values())
        lines.append(f"  {total:6.1f} s  {path:50} {timing._parts(spent, total)}")
    lines.append(f"The {min(N, len(items))} slowest tests:")
    for seconds, path, kind, label in sorted(items, key=lambda t: -t[0])[:N]:
        lines.append(f"  {seconds:6.1f} s  {path:50} {kind:16} {label[:60]}")
    return lines


def pytest_terminal_summary(terminalreporter):
    if hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller reports
        return
    lines = summary()
    if lines:
        terminalreporter.section("where the time went")
        for line in lines:
            terminalreporter.write_line(line)

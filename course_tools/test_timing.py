"""A pytest plugin: ``course test`` ends with its ten slowest files and tests, and why.

Load it with ``-p course_tools.test_timing``. It reads the durations pytest reports (with
pytest-xdist, the controller receives every worker's reports), sums them per file, and names
what each nbval cell spends its time on with :func:`course_tools.timing.kind_of` (a notebook's
kernel start-up is the setup of its first cell). Unit tests count as "test" time; the slowest of
them are usually the ones that execute notebooks or start JupyterLab, a browser or a sandbox.

Wall time on shared cores includes waiting for them, so each test also carries the CPU time
its worker and the worker's ended child processes (kernels, subprocesses) used, measured on the
worker and sent with its teardown report: the CPU seconds are the work, the wall seconds the wait.
A child's CPU counts when it ends, so a notebook's kernel counts in its last cell's test; per
file the sum is whole.
"""

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from . import timing

N = 10
_DURATIONS = defaultdict(float)  # nodeid -> seconds (setup + call + teardown)
_SETUP = defaultdict(float)  # nodeid -> setup seconds
_CPU = defaultdict(float)  # nodeid -> CPU seconds of the worker and its ended children
_CPU_KEY = pytest.StashKey[float]()


def _cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_CPU_KEY] = _cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "teardown" and _CPU_KEY in item.stash:
        report.user_properties.append(("cpu_s", _cpu_seconds() - item.stash[_CPU_KEY]))


def pytest_runtest_logreport(report):
    _DURATIONS[report.nodeid] += report.duration
    if report.when == "setup":
        _SETUP[report.nodeid] += report.duration
    for name, value in getattr(report, "user_properties", ()):
        if name == "cpu_s":
            _CPU[report.nodeid] += value


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


def per_file():
    """Return ``{file: {"wall_s", "cpu_s", "spent": {kind: seconds}}}`` for every file seen."""
    files = {}
    for nodeid, seconds in _DURATIONS.items():
        path, kind, _ = _kind(nodeid)
        entry = files.setdefault(path, {"wall_s": 0.0, "cpu_s": 0.0, "spent": {}})
        setup = _SETUP.get(nodeid, 0.0) if path.endswith(".ipynb") else 0.0
        entry["wall_s"] += seconds
        entry["cpu_s"] += _CPU.get(nodeid, 0.0)
        if setup:
            entry["spent"][timing.STARTUP] = entry["spent"].get(timing.STARTUP, 0.0) + setup
        entry["spent"][kind] = entry["spent"].get(kind, 0.0) + seconds - setup
    return dict(sorted(files.items(), key=lambda kv: -kv[1]["cpu_s"]))


def summary():
    """Return the lines of the slowest files and tests seen so far."""
    if not _DURATIONS:
        return []
    files = per_file()
    lines = [
        f"The {min(N, len(files))} slowest test files (wall seconds, CPU seconds), "
        "and what they spent it on:"
    ]
    for path, f in sorted(files.items(), key=lambda kv: -kv[1]["wall_s"])[:N]:
        parts = timing._parts(f["spent"], f["wall_s"])
        lines.append(f"  {f['wall_s']:6.1f} s  {f['cpu_s']:6.1f} cpu s  {path:50} {parts}")
    if _CPU:
        lines.append(f"CPU seconds in all, per file: {_cpu_ranking(files)}")
    items = [(seconds, *_kind(nodeid)) for nodeid, seconds in _DURATIONS.items()]
    lines.append(f"The {min(N, len(items))} slowest tests:")
    for seconds, path, kind, label in sorted(items, key=lambda t: -t[0])[:N]:
        lines.append(f"  {seconds:6.1f} s  {path:50} {kind:16} {label[:60]}")
    return lines


def _cpu_ranking(files):
    """Return the total CPU seconds and the files that used the most, most first."""
    total = sum(f["cpu_s"] for f in files.values())
    top = list(files.items())[:N]  # per_file() puts the most CPU first
    return f"{total:.0f} s; " + ", ".join(f"{Path(p).as_posix()} {f['cpu_s']:.0f}" for p, f in top)


TIMES = "COURSE_TEST_TIMES"  # a file: every test file's wall and CPU seconds, as JSON


def pytest_terminal_summary(terminalreporter):
    if hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller reports
        return
    if os.environ.get(TIMES) and _DURATIONS:
        out = Path(os.environ[TIMES])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(per_file(), indent=1) + "\n")
    lines = summary()
    if lines:
        terminalreporter.section("where the time went")
        for line in lines:
            terminalreporter.write_line(line)

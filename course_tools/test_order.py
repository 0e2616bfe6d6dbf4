"""A pytest plugin: the test files that take longest start first.

``course test`` runs its main pass on three pytest-xdist workers with ``--dist loadfile``: each
file (a notebook's cells, a module's tests) goes whole to one worker, in the order of the
collection, as workers free up. A long file that starts last is the run's tail, with the other
workers done and a core idle. pytest-xdist orders files by their number of tests by default,
which says little about time here: a notebook's tests are its cells, and the claims lab, the
longest notebook, has few. This plugin orders the collection by each file's duration in a
previous run, longest first (the "longest processing time first" rule), and ``course test``
passes ``--no-loadscope-reorder`` so the workers take files in that order. Tests keep their
order within a file.

The durations are :mod:`course_tools.test_timing`'s per-file times: the committed
``tests/durations.json`` (measured on the reference machine; ``course test`` does not change it),
updated by the last run's own file (``COURSE_TEST_TIMES``) where there is one. A file found in
neither goes first: unknown, so it may be long. A test module's weight is its wall time (its
waits, a timeout under test or a server starting, are its own); a notebook's is its wall time
but at most twice its CPU time: the claims lab's second twin spends minutes waiting for the
first one's shared measurement, and started early it would hold a worker idle for them.
"""

import json
import os
from pathlib import Path

from .test_timing import TIMES

COMMITTED = Path("tests") / "durations.json"
CPU_TO_WALL = 2.0  # a notebook's wall time on the shared cores is 1.3-1.8x its CPU time


def _read(path):
    """Return ``{file: weight in seconds}`` from a times or durations file ({} if unreadable)."""
    out = {}
    for name, value in _raw(path).items():
        wall, cpu = value.get("wall_s"), value.get("cpu_s")
        if not isinstance(wall, int | float):
            continue
        if name.endswith(".ipynb") and isinstance(cpu, int | float):
            wall = min(wall, CPU_TO_WALL * cpu)
        out[name] = float(wall)
    return out


def _raw(path):
    """Return ``{file: {"wall_s", "cpu_s"}}`` from a times or durations file ({} if unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        f: (v if isinstance(v, dict) else {"wall_s": v})
        for f, v in data.items()
        if isinstance(v, dict | int | float)
    }


def durations(root):
    """Return ``{file: seconds}``: the committed durations, updated by the last run's."""
    known = _read(Path(root) / COMMITTED)
    if os.environ.get(TIMES):
        known.update(_read(os.environ[TIMES]))
    return known


def longest_first(items, known):
    """Return ``items`` grouped by file, the files in order of ``known`` seconds (longest first,
    unknown files before all), each file's tests in their own order."""
    files = {}
    for item in items:
        files.setdefault(item.nodeid.partition("::")[0], []).append(item)
    ranked = sorted(files, key=lambda f: -known.get(f, float("inf")))  # a stable sort
    return [item for f in ranked for item in files[f]]


def pytest_collection_modifyitems(session, config, items):
    known = durations(config.rootpath)
    if known:
        items[:] = longest_first(items, known)


def save(root, times):
    """Update the committed durations from a run's per-file ``times`` file; return the count of
    files written. Files of the committed list that the run did not see (a partial run) keep
    their old figure; files that no longer exist are dropped."""
    root = Path(root)
    ran = _raw(times)
    if not ran:
        raise FileNotFoundError(
            f"no per-file times in {times}: run `python3 course.py test` first (it writes them)"
        )
    merged = {**_raw(root / COMMITTED), **ran}
    kept = {
        f: {k: round(v[k], 1) for k in ("wall_s", "cpu_s") if isinstance(v.get(k), int | float)}
        for f, v in sorted(merged.items())
        if (root / f).exists()
    }
    (root / COMMITTED).write_text(json.dumps(kept, indent=1) + "\n")
    return len(kept)

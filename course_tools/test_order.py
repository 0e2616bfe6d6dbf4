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

The durations are the ``wall_s`` of :mod:`course_tools.test_timing`'s per-file times: the
committed ``tests/durations.json`` (measured on the reference machine; ``course test`` does not
change it), updated by the last run's own file (``COURSE_TEST_TIMES``) where there is one. A file
found in neither goes first: unknown, so it may be long.
"""

import json
import os
from pathlib import Path

from .test_timing import TIMES

COMMITTED = Path("tests") / "durations.json"


def _read(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for name, value in data.items():
        seconds = value.get("wall_s") if isinstance(value, dict) else value
        if isinstance(seconds, int | float):
            out[name] = float(seconds)
    return out


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
    ran = _read(times)
    if not ran:
        raise FileNotFoundError(
            f"no per-file times in {times}: run `python3 course.py test` first (it writes them)"
        )
    merged = {**_read(root / COMMITTED), **ran}
    kept = {f: round(s, 1) for f, s in sorted(merged.items()) if (root / f).exists()}
    (root / COMMITTED).write_text(json.dumps(kept, indent=1) + "\n")
    return len(kept)

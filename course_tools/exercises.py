"""Turn worked solutions into exercises: ``solutions/`` is the single source of ``exercises/``.

In a solution notebook's code cells, an answer sits between marker lines::

    def count_ops(fn):
        # BEGIN SOLUTION
        return len(...)
        # END SOLUTION

and becomes ``raise NotImplementedError(...)`` at the marker's indentation. A marker may name
its own stub: ``# BEGIN SOLUTION stub: answer = ...``. In markdown cells,
``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` becomes a prompt for the student's
own words. Cells tagged ``solution-only`` are left out. Exercises carry no outputs.

Generated notebooks record a digest of their cells, so regenerating never overwrites an
exercise notebook that someone has edited since (a student's work) unless forced, and then a
backup is kept under ``build/``.
"""

import copy
import hashlib
import json
import re
import shutil
import time
from pathlib import Path

from course_utils.errors import CourseError

from . import notebooks

BEGIN = re.compile(r"^(?P<indent>\s*)#\s*BEGIN SOLUTION(?:\s+stub:\s*(?P<stub>.*))?\s*$")
END = re.compile(r"^\s*#\s*END SOLUTION\s*$")
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
DEFAULT_STUB = 'raise NotImplementedError("Exercise: write your code here")'
MD_STUB = "*Your answer here.*"


def strip_code(source, where):
    """Return ``(code with answers replaced by stubs, number of answers)`` for a code cell."""
    out, inside, count = [], None, 0
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside:
                raise CourseError(f"{where}, line {number}: BEGIN SOLUTION inside another one")
            inside = begin
            count += 1
            out.append(begin.group("indent") + (begin.group("stub") or DEFAULT_STUB))
        elif end:
            if not inside:
                raise CourseError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = None
        elif not inside:
            out.append(line)
    if inside:
        raise CourseError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out), count


def strip_markdown(source, where):
    """Return ``(markdown with answers replaced by a prompt, number of answers)``."""
    count = source.count(MD_BEGIN)
    if count != source.count(MD_END):
        raise CourseError(f"{where}: unbalanced {MD_BEGIN} / {MD_END} markers")
    pattern = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END), re.S)
    return pattern.sub(MD_STUB, source), count


def digest(nb):
    """Return a short hash of a notebook's cell types and sources."""
    cells = [[c.cell_type, c.source] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def generate(solution_path, root):
    """Return the exercise notebook (an nbformat node) generated from one solution notebook."""
    solution_path = Path(solution_path)
    rel = solution_path.relative_to(root)
    nb = copy.deepcopy(notebooks.read(solution_path))
    cells, answers = [], 0
    for index, cell in enumerate(nb.cells):
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        where = f"{rel}, cell {index}"
        if cell.cell_type == "code":
            cell.source, n = strip_code(cell.source, where)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source, n = strip_markdown(cell.source, where)
            cell.source = cell.source.replace("solutions/", "exercises/")
        else:
            n = 0
        answers += n
        cells.append(cell)
    if answers == 0:
        raise CourseError(f"{rel}: no BEGIN SOLUTION markers, so there is no exercise to make")
    nb.cells = cells
    notebooks.clean(nb)
    nb.metadata["course"] = {"generated_from": rel.as_posix(), "digest": digest(nb)}
    return nb


def target_of(solution_path, root):
    rel = Path(solution_path).relative_to(Path(root) / "solutions")
    return Path(root) / "exercises" / rel


def edited_since_generated(path):
    """Return True if an exercise notebook on disk was changed after it was generated."""
    nb = notebooks.read(path)
    recorded = nb.metadata.get("course", {}).get("digest")
    has_outputs = any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    return recorded != digest(nb) or has_outputs


def generate_all(root, entries, force=False):
    """Write ``exercises/`` from ``solutions/`` for the given solution entries; return written paths.

    Refuses (CourseError) to overwrite an exercise notebook that was edited since it was
    generated, unless ``force``; then the old file is copied to ``build/exercise-backups/``.
    """
    written = []
    for entry in entries:
        new = generate(entry.path, root)
        target = target_of(entry.path, root)
        if target.exists():
            if same(notebooks.read(target), new):
                continue
            if edited_since_generated(target):
                if not force:
                    raise CourseError(
                        f"{target.relative_to(root)} was edited since it was generated (someone's "
                        "work?), so it is not overwritten. Save that work elsewhere, or run again "
                        "with --force (a backup is kept under build/exercise-backups/)."
                    )
                backup = Path(root) / "build" / "exercise-backups" / time.strftime("%Y%m%d-%H%M%S")
                backup = backup / target.relative_to(root)
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(target, backup)
        notebooks.write(new, target)
        written.append(target)
    return written


def same(a, b):
    """Return True when two notebooks have the same cells and course metadata."""

    def core(nb):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    return core(a) == core(b) and a.metadata.get("course") == b.metadata.get("course")


def stale(root, entries):
    """Return human-readable problems: exercise notebooks missing or out of date."""
    problems = []
    for entry in entries:
        target = target_of(entry.path, root)
        rel = target.relative_to(root)
        if not target.exists():
            problems.append(f"{rel} is missing")
        elif not same(notebooks.read(target), generate(entry.path, root)):
            problems.append(f"{rel} is out of date with {entry.path.relative_to(root)}")
    return problems

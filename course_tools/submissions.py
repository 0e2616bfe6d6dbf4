"""Find and identify submitted exercise notebooks: whose each is, and which exercise it is.

Any layout works: one folder per student (``alice/00_setup/pytorch.ipynb``), files named
after the student (``bob_00_setup_pytorch.ipynb``), or both. The exercise comes from the
notebook's own metadata (``metadata.course.generated_from``), else from its ``cu.check``
calls, else from its name. Used by :mod:`course_tools.grading`.
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from course_utils import checks
from course_utils.errors import CourseError

SKIP_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__", ".ipynb_checkpoints"}
STRUCTURAL = {
    "exercises",
    "exercise",
    "solutions",
    "notebooks",
    "submissions",
    "submission",
    "submitted",
    "homework",
    "pytorch",
    "tensorflow",
    "torch",
    "tf",
}
TRACK_WORDS = {
    "pytorch": "pytorch",
    "torch": "pytorch",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
}


@dataclass
class Submission:
    """One notebook found in the submissions folder."""

    rel: str  # path inside the submissions folder (posix)
    student: str
    concept: str | None
    track: str | None
    data: bytes
    found_by: str  # how concept and track were told: metadata, code, name, or "" (not told)
    problem: str | None = None  # why it cannot be run (malformed), or None

    @property
    def key(self):
        return f"{self.concept}/{self.track}" if self.concept else "?"


def find(folder):
    """Return the notebooks under ``folder`` (sorted), skipping hidden folders and checkpoints."""
    folder = Path(folder)
    if not folder.exists():
        raise CourseError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise CourseError(f"{folder} is a file: give the folder that holds the submissions")
    found = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(names):
            path = Path(here) / name
            if (
                name.endswith(".ipynb")
                and not name.startswith((".", "~"))
                and not name.endswith("-checkpoint.ipynb")
                and not path.is_symlink()
            ):
                found.append(path)
    if not found:
        raise CourseError(f"no notebooks (*.ipynb) under {folder}: nothing to grade")
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def known_exercises():
    """Return ``{(concept, track): [(exercise id, title), ...]}`` from the course's checkers."""
    table = {}
    for ex_id, ex in checks.load_checkers().items():
        concept, track, _ = ex_id.split(".", 2)
        table.setdefault((concept, track), []).append((ex_id, ex.title))
    return table


def _pair(concept, track, table):
    return (concept, track) if (concept, track) in table else None


def from_metadata(nb, table):
    """Return (concept, track) from ``metadata.course.generated_from``, or None."""
    origin = (nb or {}).get("metadata", {}).get("course", {}).get("generated_from")
    if not isinstance(origin, str):
        return None
    parts = Path(origin).parts
    return _pair(parts[-2], Path(parts[-1]).stem, table) if len(parts) >= 2 else None


def from_code(nb, table):
    """Return (concept, track) named by the notebook's ``cu.check``/``cu.recorder`` calls, or None."""
    text = "\n".join(
        "".join(c.get("source", ""))
        for c in (nb or {}).get("cells", [])
        if c.get("cell_type") == "code"
    )
    pairs = set(re.findall(r"check\(\s*[\"'](\d\d_[a-z0-9_]+)\.(pytorch|tensorflow)\.", text))
    pairs |= set(
        re.findall(
            r"recorder\(\s*[\"'](\d\d_[a-z0-9_]+)[\"']\s*,\s*[\"'](pytorch|tensorflow)", text
        )
    )
    pairs = {p for p in pairs if p in table}
    return pairs.pop() if len(pairs) == 1 else None


def _topic(concept):
    """Return a pattern for a concept's topic as a word: ``graphs``, ``gpu-offload``, ..."""
    return r"(?<![a-z0-9])" + re.escape(concept[3:]).replace("_", r"[_\-\s]?") + r"(?![a-z0-9])"


def _concept_in(text, concepts):
    """Return the concept a name mentions (``00_setup``, ``00-setup``, ``00``, ``setup``), or None."""
    low = text.lower()
    for concept in concepts:
        if concept in low or concept.replace("_", "-") in low:
            return concept
    numbers = {c[:2]: c for c in concepts}
    for number in re.findall(r"(?<![0-9a-z])(\d\d)(?![0-9])", low):
        if number in numbers:
            return numbers[number]
    topics = [c for c in concepts if re.search(_topic(c), low)]
    return topics[0] if len(topics) == 1 else None


def _track_in(text):
    words = re.split(r"[^a-z0-9]+", text.lower())
    tracks = {TRACK_WORDS[w] for w in words if w in TRACK_WORDS}
    return tracks.pop() if len(tracks) == 1 else None


def from_names(rel, table):
    """Return (concept, track) from the folder and file names, or None."""
    concepts = sorted({c for c, _ in table})
    concept = track = None
    for part in reversed(Path(rel).with_suffix("").parts):
        concept = concept or _concept_in(part, concepts)
        track = track or _track_in(part)
    return _pair(concept, track, table) if concept and track else None


def _structural(name, concepts):
    low = name.lower()
    stripped = _strip_known(low, concepts)
    return low in STRUCTURAL or not stripped


def _strip_known(text, concepts):
    """Remove concept names/numbers, track and set words from a name; return what is left."""
    low = text.lower()
    for concept in concepts:
        low = low.replace(concept, " ").replace(concept.replace("_", "-"), " ")
        low = re.sub(_topic(concept), " ", low)
    numbers = {c[:2] for c in concepts}
    low = re.sub(
        r"(?<![0-9a-z])(\d\d)(?![0-9])", lambda m: " " if m.group(1) in numbers else m.group(1), low
    )
    words = [w for w in re.split(r"[\s_.\-]+", low) if w and w not in STRUCTURAL]
    return "_".join(words)


def student_of(rel, concepts):
    """Return the student a notebook belongs to, from its folder or, failing that, its file name.

    ``alice/00_setup/pytorch.ipynb`` and ``exercises/alice/pytorch.ipynb`` are alice's;
    ``bob_00_setup_pytorch.ipynb`` and ``00_setup-tensorflow-bob.ipynb`` are bob's: the first
    folder that is not a concept, track or set name, else the file name less those words.
    Returns "" when neither says (the notebook is then listed under its path).
    """
    path = Path(rel)
    for part in path.parts[:-1]:
        if not _structural(part, concepts):
            return part
    original = path.stem
    left = _strip_known(original, concepts)
    if not left:
        return ""
    # keep the student's own spelling: find the leftover words in the original name
    words = left.split("_")
    pieces = re.split(r"[\s_.\-]+", original)
    kept = [p for p in pieces if p.lower() in words]
    return "_".join(kept) or left


def readable(data):
    """Return the notebook in ``data`` as Jupyter would open it (upgraded to version 4).

    Raises for what Jupyter could not open either (not JSON, no cells); small departures from
    the schema, which Jupyter tolerates, are let through quietly.
    """
    import warnings

    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("it has no list of cells")
    return nb


def identify(path, folder, table):
    """Return a :class:`Submission` for the notebook at ``path`` (never raises for bad files)."""
    rel = Path(path).relative_to(folder).as_posix()
    data = Path(path).read_bytes()
    concepts = sorted({c for c, _ in table})
    nb, problem = None, None
    try:
        nb = json.loads(data.decode("utf-8"))
        readable(data)
    except Exception as err:  # undecodable, not JSON, not a notebook
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        problem = f"not a valid notebook ({first[:200]})"
        nb = nb if isinstance(nb, dict) else None
    found_by = ""
    pair = None
    for how, finder in (("metadata", from_metadata), ("code", from_code)):
        try:
            pair = finder(nb, table)
        except (AttributeError, TypeError, ValueError):
            pair = None
        if pair:
            found_by = how
            break
    if not pair:
        pair = from_names(rel, table)
        found_by = "name" if pair else ""
    concept, track = pair or (None, None)
    student = student_of(rel, concepts)
    if not student and "/" not in rel and not _structural(Path(folder).resolve().name, concepts):
        student = Path(folder).resolve().name  # `course grade submissions/alice`
    return Submission(rel, student or rel, concept, track, data, found_by, problem)

"""Find, read and clean the course's notebooks.

Layout: ``<root>/<set>/<concept>/<track>.ipynb`` where set is notebooks, solutions or
exercises, concept is ``NN_name`` and track is pytorch or tensorflow.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_utils.errors import CourseError

SETS = ("notebooks", "solutions", "exercises")
TRACKS = ("pytorch", "tensorflow")
CONCEPT_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")
VOLATILE_NB_KEYS = ("papermill", "widgets")


@dataclass(frozen=True)
class Entry:
    """One notebook of the course."""

    set: str
    concept: str
    track: str
    path: Path

    @property
    def key(self):
        return f"{self.set}/{self.concept}/{self.track}"


def concepts(root):
    """Return the concept folder names under ``notebooks/``, sorted."""
    base = Path(root) / "notebooks"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and CONCEPT_RE.match(p.name))


def resolve_concept(root, name):
    """Resolve '01', '01_graphs' or 'graphs' to a concept folder name, or raise CourseError."""
    known = concepts(root)
    matches = [c for c in known if name in (c, c[:2], c[3:])]
    if len(matches) != 1:
        raise CourseError(f"unknown concept {name!r}; known concepts: {', '.join(known)}")
    return matches[0]


def select(root, only=(), sets=("notebooks",)):
    """Return the :class:`Entry` list chosen by ``only`` (concept and/or track names).

    ``only`` items may be a concept ('01', '01_graphs', 'graphs'), a track ('pytorch',
    'tensorflow') or both ('01/pytorch'). Nothing given means everything. A notebook that
    should exist but does not raises CourseError.
    """
    for s in sets:
        if s not in SETS:
            raise CourseError(f"unknown set {s!r}; choose from {', '.join(SETS)}")
    chosen_concepts, chosen_pairs, chosen_tracks = set(), set(), set()
    for item in only:
        parts = item.strip("/").split("/")
        if len(parts) == 1 and parts[0] in TRACKS:
            chosen_tracks.add(parts[0])
        elif len(parts) == 1:
            chosen_concepts.add(resolve_concept(root, parts[0]))
        elif len(parts) == 2 and parts[1] in TRACKS:
            chosen_pairs.add((resolve_concept(root, parts[0]), parts[1]))
        else:
            raise CourseError(
                f"cannot read {item!r}: use a concept (01 or 01_graphs), a track "
                f"({' or '.join(TRACKS)}), or concept/track"
            )
    entries = []
    for s in sets:
        for concept in concepts(root):
            for track in TRACKS:
                wanted = (
                    not only
                    or (concept, track) in chosen_pairs
                    or (
                        concept in chosen_concepts and (not chosen_tracks or track in chosen_tracks)
                    )
                    or (not chosen_concepts and track in chosen_tracks)
                )
                if not wanted:
                    continue
                path = Path(root) / s / concept / f"{track}.ipynb"
                if not path.is_file():
                    raise CourseError(f"missing notebook: {path.relative_to(root)}")
                entries.append(Entry(s, concept, track, path))
    return entries


def read(path):
    """Read and validate a notebook, or raise CourseError naming the file and the problem."""
    path = Path(path)
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except FileNotFoundError:
        raise CourseError(f"missing notebook: {path}") from None
    except Exception as err:  # JSON errors, schema errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CourseError(f"{path}: not a valid notebook ({first})") from None
    return nb


def write(nb, path):
    """Write a notebook the way Jupyter does (1-space indent, trailing newline)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def clean(nb, root=None):
    """Remove volatile metadata (timestamps, papermill state, widget state) in place; return nb.

    With ``root`` (the course folder the notebook ran in), stored tracebacks name files relative
    to it (``.venv/lib/...``, ``course_utils/...``) instead of by this machine's absolute path.
    nbval never compares tracebacks, so the check is unchanged; readers see no one's folders.
    """
    prefixes = []
    if root is not None:
        prefixes = sorted({f"{Path(root)}/", f"{Path(root).resolve()}/"}, key=len, reverse=True)
    for cell in nb.cells if prefixes else ():
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [
                    _without(line, prefixes) for line in output.get("traceback", [])
                ]
    for key in VOLATILE_NB_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop("execution", None)
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                # Widget state is not saved, so the view id would point at nothing.
                data.pop("application/vnd.jupyter.widget-view+json")
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _without(text, prefixes):
    for prefix in prefixes:
        text = text.replace(prefix, "")
    return text


def headings(nb, levels=(2, 3)):
    """Return the markdown headings of the given levels, as ``"## text"`` strings, in order."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        in_code = False
        for line in cell.source.splitlines():
            if line.startswith("```"):
                in_code = not in_code
            match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if match and not in_code and len(match.group(1)) in levels:
                found.append(f"{match.group(1)} {match.group(2)}")
    return found


def parameters_cell(nb):
    """Return the cell tagged ``parameters`` (papermill's convention), or None."""
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            return cell
    return None

"""Where the course lives on disk, and where notebooks may write."""

import os
from pathlib import Path

MARKER = "course-utils"  # the project name in the repository's pyproject.toml


def find_root(start=None):
    """Return the repository root (the folder whose pyproject.toml names the course), or None."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if project.is_file() and f'name = "{MARKER}"' in project.read_text(encoding="utf-8"):
            return folder
    return None


def repo_root():
    """Return the repository root, or raise CourseError when run outside a checkout."""
    from .errors import CourseError

    root = find_root()
    if root is None:
        raise CourseError(
            "this command needs the course repository: run it from inside a checkout "
            "(or set COURSE_ROOT to the checkout's folder)."
        )
    return root


def workdir(concept, track):
    """Return (and create) the folder where a notebook may write files.

    ``$COURSE_WORKDIR/<concept>/<track>`` when the runner sets it, else
    ``build/work/<concept>/<track>`` in the checkout, else ``./course_build/...`` (e.g. on
    Colab). Notebooks never write next to themselves, so nothing in the repository changes.
    """
    base = os.environ.get("COURSE_WORKDIR")
    if base:
        folder = Path(base)
    else:
        root = find_root()
        folder = (root / "build" / "work") if root else Path.cwd() / "course_build"
    folder = folder / concept / track
    folder.mkdir(parents=True, exist_ok=True)
    return folder

"""Shared fixtures: the repository root, and a scratch course repository for CLI tests."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import nbformat.v4 as nbf
import pytest

pytest_plugins = ["pytester"]  # tests of the course's own pytest plugins

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def root():
    return ROOT


def write_nb(path, cells):
    """Write a notebook made of ("code"|"md", source[, tags]) tuples."""
    nb = nbf.new_notebook()
    for item in cells:
        kind, source, tags = (*item, [])[:3]
        cell = nbf.new_code_cell(source) if kind == "code" else nbf.new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb))
    return path


@pytest.fixture
def scratch(tmp_path):
    """A minimal course checkout with one concept whose notebooks run in a second."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "course-utils"\n')
    for track in ("pytorch", "tensorflow"):
        write_nb(
            tmp_path / "notebooks" / "01_demo" / f"{track}.ipynb",
            [
                ("md", "## 1. Numbers"),
                ("code", "quick = True\nseed = 0\ndevice = 'auto'", ["parameters"]),
                ("code", f"import course_utils as cu\nrecord = cu.recorder('01_demo', '{track}')"),
                ("code", "record('answer', 6 * 7)\nprint('quick' if quick else 'full')"),
            ],
        )
    return tmp_path


def course(*args, cwd, env=None):
    """Run ``python -m course_tools`` and return the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("COURSE_ROOT", "COURSE_WORKDIR")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "course_tools", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def _working_directory_unchanged():
    """Every test leaves the process's working directory as it found it: the test command's
    workers open files by relative paths (nbval's sanitizer file) after running other tests."""
    before = os.getcwd()
    yield
    after = os.getcwd() if os.path.isdir(".") else "(a deleted folder)"
    if after != before:
        os.chdir(before)
        pytest.fail(f"the test changed the working directory from {before} to {after}")

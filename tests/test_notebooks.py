"""Finding, reading and cleaning notebooks."""

import nbformat
import pytest

from conftest import write_nb
from course_tools import notebooks
from course_utils.errors import CourseError


@pytest.mark.parametrize("name", ["01", "01_demo", "demo"])
def test_a_concept_can_be_named_three_ways(scratch, name):
    assert notebooks.resolve_concept(scratch, name) == "01_demo"


def test_selection_by_track_and_by_pair(scratch):
    keys = [e.key for e in notebooks.select(scratch, ["tensorflow"])]
    assert keys == ["notebooks/01_demo/tensorflow"]
    keys = [e.key for e in notebooks.select(scratch, ["01/pytorch"])]
    assert keys == ["notebooks/01_demo/pytorch"]
    assert len(notebooks.select(scratch)) == 2


def test_unknown_names_and_sets_are_course_errors(scratch):
    with pytest.raises(CourseError, match="known concepts: 01_demo"):
        notebooks.select(scratch, ["02"])
    with pytest.raises(CourseError, match="unknown set"):
        notebooks.select(scratch, sets=["drafts"])


def test_reading_a_malformed_notebook_names_it(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": 3}')
    with pytest.raises(CourseError, match="bad.ipynb: not a valid notebook"):
        notebooks.read(bad)
    with pytest.raises(CourseError, match="missing notebook"):
        notebooks.read(tmp_path / "none.ipynb")


def test_headings_skip_code_fences_and_title(tmp_path):
    path = write_nb(
        tmp_path / "n.ipynb",
        [
            ("md", "# Title\n## 1. One\n```\n## not a heading\n```\n### 1.1 Sub"),
            ("md", "## Summary"),
        ],
    )
    assert notebooks.headings(notebooks.read(path)) == ["## 1. One", "### 1.1 Sub", "## Summary"]


def test_clean_removes_volatile_metadata(tmp_path):
    path = write_nb(tmp_path / "n.ipynb", [("code", "1")])
    nb = notebooks.read(path)
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-01-01"}
    nb.cells[0].metadata["papermill"] = {"status": "completed"}
    nb.cells[0].metadata["tags"] = ["keep"]
    notebooks.clean(nb)
    assert "papermill" not in nb.metadata
    assert nb.cells[0].metadata == {"tags": ["keep"]}


def test_clean_with_a_root_makes_traceback_paths_relative_and_leaves_other_outputs(tmp_path):
    root = tmp_path / "course"
    path = write_nb(tmp_path / "n.ipynb", [("code", "1")])
    nb = notebooks.read(path)
    frame = f"\x1b[32m{root}/.venv/lib/python3.11/site-packages/torch/x.py:3\x1b[39m"
    stream = f"saved to {root}/build/x.onnx\n"
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=stream),
        nbformat.v4.new_output("error", ename="E", evalue="v", traceback=[frame, "Cell In[1]"]),
    ]
    notebooks.clean(nb)  # no root: nothing rewritten
    assert nb.cells[0].outputs[1].traceback[0] == frame
    notebooks.clean(nb, root=root)
    assert nb.cells[0].outputs[1].traceback == [
        "\x1b[32m.venv/lib/python3.11/site-packages/torch/x.py:3\x1b[39m",
        "Cell In[1]",
    ]
    assert nb.cells[0].outputs[0].text == stream  # nbval compares streams: left as produced

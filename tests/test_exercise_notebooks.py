"""Every exercise notebook, unsolved, runs to the end and its checkers say "not solved".

This file runs the PyTorch track, ``test_exercise_notebooks_tensorflow.py`` the TensorFlow
track: two files, so that two of the test command's workers share the twenty notebooks (a file
goes whole to one worker) instead of one worker running them all.
"""

import pytest

from conftest import ROOT
from course_tools import notebooks, runner
from course_utils import checks


def entries(track):
    """The exercise notebooks of one track (test_layout checks that nothing is missing)."""
    return [
        notebooks.Entry("exercises", p.parent.name, p.stem, p)
        for p in sorted(ROOT.glob(f"exercises/*/{track}.ipynb"))
    ]


def run_unsolved(entry, tmp_path):
    out = ROOT / "build" / "test-exercises" / entry.concept / f"{entry.track}.ipynb"
    outcome = runner.execute(
        entry, out, cwd=tmp_path, env={"COURSE_WORKDIR": str(tmp_path / "work")}
    )
    assert outcome.ok, outcome.error
    statuses = [c["status"] for c in checks.read_checks(out)]
    assert statuses, "the exercise notebook shows no check results"
    assert set(statuses) == {"not solved"}, statuses


ENTRIES = entries("pytorch")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.key for e in ENTRIES])
def test_unsolved_exercises_run_to_the_end(entry, tmp_path):
    run_unsolved(entry, tmp_path)


def test_both_tracks_have_their_exercise_notebooks():
    tracks = {p.stem for p in ROOT.glob("exercises/*/*.ipynb")}
    assert tracks == set(notebooks.TRACKS), tracks  # a new track needs a file like this one
    assert len(ENTRIES) == len(entries("tensorflow")) > 0

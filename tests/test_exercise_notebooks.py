"""Every exercise notebook, unsolved, runs to the end and its checkers say "not solved"."""

import pytest

from conftest import ROOT
from course_tools import notebooks, runner
from course_utils import checks

ENTRIES = [  # what exists; test_layout checks that nothing is missing
    notebooks.Entry("exercises", p.parent.name, p.stem, p)
    for p in sorted(ROOT.glob("exercises/*/*.ipynb"))
]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.key for e in ENTRIES])
def test_unsolved_exercises_run_to_the_end(entry, tmp_path):
    out = ROOT / "build" / "test-exercises" / entry.concept / f"{entry.track}.ipynb"
    outcome = runner.execute(
        entry, out, cwd=tmp_path, env={"COURSE_WORKDIR": str(tmp_path / "work")}
    )
    assert outcome.ok, outcome.error
    statuses = [c["status"] for c in checks.read_checks(out)]
    assert statuses, "the exercise notebook shows no check results"
    assert set(statuses) == {"not solved"}, statuses

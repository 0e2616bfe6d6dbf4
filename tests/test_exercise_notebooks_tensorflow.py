"""The TensorFlow track's exercise notebooks, unsolved, run to the end and say "not solved"
(the PyTorch track and the shared code: test_exercise_notebooks.py)."""

import pytest
from test_exercise_notebooks import entries, run_unsolved

ENTRIES = entries("tensorflow")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.key for e in ENTRIES])
def test_unsolved_exercises_run_to_the_end(entry, tmp_path):
    run_unsolved(entry, tmp_path)

"""The exercise generator: markers become stubs, edited exercises are never overwritten."""

import nbformat.v4 as nbf
import pytest

from conftest import write_nb
from course_tools import exercises, notebooks
from course_utils.errors import CourseError


def test_code_answer_becomes_a_stub_at_the_marker_indentation():
    source = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n"
    code, n = exercises.strip_code(source, "here")
    assert n == 1
    assert code == 'def f(x):\n    raise NotImplementedError("Exercise: write your code here")'


def test_a_marker_can_name_its_own_stub():
    code, n = exercises.strip_code(
        "# BEGIN SOLUTION stub: answer = ...\nanswer = 42\n# END SOLUTION", "c"
    )
    assert (code, n) == ("answer = ...", 1)


@pytest.mark.parametrize(
    "source, message",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "END SOLUTION without BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another"),
    ],
)
def test_unbalanced_markers_are_reported_with_their_place(source, message):
    with pytest.raises(CourseError, match=message) as err:
        exercises.strip_code(source, "solutions/x.ipynb, cell 3")
    assert "cell 3" in str(err.value)


def test_markdown_answers_become_a_prompt():
    text, n = exercises.strip_markdown(
        "Why?\n<!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->", "c"
    )
    assert n == 1 and text == "Why?\n*Your answer here.*"
    with pytest.raises(CourseError, match="unbalanced"):
        exercises.strip_markdown("<!-- BEGIN SOLUTION --> oops", "c")


def make_solution(root):
    path = root / "solutions" / "01_demo" / "pytorch.ipynb"
    write_nb(
        path,
        [
            ("md", "# Demo\n[badge](https://x/solutions/01_demo/pytorch.ipynb)"),
            ("code", "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION"),
            ("code", "print('only in solutions')", ["solution-only"]),
        ],
    )
    nb = notebooks.read(path)
    nb.cells[1].outputs = [nbf.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 1
    notebooks.write(nb, path)
    return notebooks.Entry("solutions", "01_demo", "pytorch", path)


def test_generate_strips_answers_outputs_and_solution_only_cells(tmp_path):
    entry = make_solution(tmp_path)
    nb = exercises.generate(entry.path, tmp_path)
    assert len(nb.cells) == 2
    assert "exercises/01_demo/pytorch.ipynb" in nb.cells[0].source
    assert "NotImplementedError" in nb.cells[1].source and "return 1" not in nb.cells[1].source
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None
    assert nb.metadata["course"]["generated_from"] == "solutions/01_demo/pytorch.ipynb"


def test_a_solution_without_markers_is_an_error(tmp_path):
    path = write_nb(tmp_path / "solutions" / "01_demo" / "pytorch.ipynb", [("code", "x = 1")])
    with pytest.raises(CourseError, match="no BEGIN SOLUTION markers"):
        exercises.generate(path, tmp_path)


def test_check_mode_sees_missing_and_stale_exercises(tmp_path):
    entry = make_solution(tmp_path)
    assert exercises.stale(tmp_path, [entry]) == ["exercises/01_demo/pytorch.ipynb is missing"]
    assert exercises.generate_all(tmp_path, [entry]) == [
        tmp_path / "exercises/01_demo/pytorch.ipynb"
    ]
    assert exercises.stale(tmp_path, [entry]) == []
    assert exercises.generate_all(tmp_path, [entry]) == []  # already current: nothing written
    nb = notebooks.read(entry.path)
    nb.cells[1].source = nb.cells[1].source.replace("return 1", "return 2")  # inside the answer
    notebooks.write(nb, entry.path)
    assert exercises.stale(tmp_path, [entry]) == []  # the exercise does not show answers
    nb.cells[0].source += "\nA new instruction."
    notebooks.write(nb, entry.path)
    assert exercises.stale(tmp_path, [entry]) == [
        "exercises/01_demo/pytorch.ipynb is out of date with solutions/01_demo/pytorch.ipynb"
    ]


def test_an_edited_exercise_is_not_overwritten_unless_forced(tmp_path):
    entry = make_solution(tmp_path)
    exercises.generate_all(tmp_path, [entry])
    target = tmp_path / "exercises/01_demo/pytorch.ipynb"
    student = notebooks.read(target)
    student.cells[1].source = "def f():\n    return 'my work'"
    notebooks.write(student, target)
    nb = notebooks.read(entry.path)
    nb.cells[1].source += "\n# changed"
    notebooks.write(nb, entry.path)
    with pytest.raises(CourseError, match="was edited since it was generated"):
        exercises.generate_all(tmp_path, [entry])
    assert "my work" in target.read_text()  # untouched
    exercises.generate_all(tmp_path, [entry], force=True)
    backups = list((tmp_path / "build" / "exercise-backups").rglob("pytorch.ipynb"))
    assert len(backups) == 1 and "my work" in backups[0].read_text()
    assert "my work" not in target.read_text()

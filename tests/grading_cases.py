"""A class's worth of submitted exercise notebooks, built from the real 00_setup exercises.

``build(folder)`` writes one notebook per situation the grader must handle and returns the
table the grader should produce: ``{(student, exercise): status}``. Exercise ids are the
course's; every "wrong" answer is wrong by construction on any machine.
"""

import base64
import json
from pathlib import Path

import nbformat
import nbformat.v4 as nbf

from conftest import ROOT
from course_utils import checks

PT, TF = "00_setup.pytorch", "00_setup.tensorflow"
STUB = 'raise NotImplementedError("Exercise: write your code here")'
ANSWERS = {
    f"{PT}.describe": (
        'return {"shape": tuple(t.shape), "dtype": str(t.dtype).removeprefix("torch."), '
        '"device": t.device.type}'
    ),
    f"{PT}.count_examples": "return sum(len(y) for _, y in pipeline)",
    f"{TF}.describe": (
        'return {"shape": tuple(t.shape), "dtype": t.dtype.name, '
        '"device": t.device.split("device:")[-1].split(":")[0].lower()}'
    ),
    f"{TF}.count_examples": "return sum(int(y.shape[0]) for _, y in pipeline)",
}
# Wrong by construction: the dtype keeps its "torch." prefix, which the checker never accepts.
WRONG_DESCRIBE = 'return {"shape": tuple(t.shape), "dtype": str(t.dtype), "device": t.device.type}'
# The student's code raises, with markup in its message that the HTML page must escape.
RAISES = "raise ZeroDivisionError('<script>alert(1)</script> by zero')"
LEFTOVER = "6131"  # seconds a process started by the hanging notebook would sleep


def exercise(track):
    return nbformat.read(str(ROOT / "exercises" / "00_setup" / f"{track}.ipynb"), as_version=4)


def answer(nb, name, body):
    """Put ``body`` in place of the stub of the function ``name``."""
    for cell in nb.cells:
        if (
            cell.cell_type == "code"
            and cell.source.startswith(f"def {name}(")
            and STUB in cell.source
        ):
            cell.source = cell.source.replace(STUB, body)
            return nb
    raise AssertionError(f"no stub for {name}()")


def check_cell(nb, exercise_id):
    """Return the index of the cell that checks ``exercise_id``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f'cu.check("{exercise_id}"' in cell.source:
            return i
    raise AssertionError(f"no check cell for {exercise_id}")


def solved(track):
    nb = exercise(track)
    prefix = PT if track == "pytorch" else TF
    for name in ("describe", "count_examples"):
        answer(nb, name, ANSWERS[f"{prefix}.{name}"])
    return nb


def write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path


def passed_output(exercise_id):
    """The output a passing check displays: what a student could paste into a notebook."""
    return nbf.new_output(
        "execute_result",
        data={
            "text/plain": f"✅ {exercise_id}: passed. Well done.",
            checks.MIME: {"exercise": exercise_id, "status": "passed"},
        },
        execution_count=1,
    )


def malicious(victim, course_copy):
    """Code that tries to break the grading: delete, overwrite, and go around the guards."""
    target = Path(course_copy) / "course_utils" / "checkers" / "c00_setup.py"
    script = (
        f"rm -f '{victim}'\n"
        f"echo '# replaced' > '{target}'\n"
        'echo "# replaced" >> "$COPY/checkers/c00_setup.py"\n'
    )
    hidden = base64.b64encode(script.encode()).decode()
    return [
        # everything in its own folder: allowed (a scratch copy)
        "from pathlib import Path\n\nfor p in Path('.').iterdir():\n    if p.is_file():\n        p.unlink()",
        # straight at another student's submission and at the checker: refused
        f"import os\n\ntry:\n    os.remove({str(victim)!r})\nexcept OSError as err:\n    print('refused:', err.strerror)",
        "try:\n    Path(cu.checks.__file__).with_name('checkers').joinpath('c00_setup.py')"
        ".write_text('')\nexcept OSError as err:\n    print('refused:', err.strerror)",
        # around Python's guards, through a shell and an obfuscated script: undone and recorded
        "import subprocess\n\n"
        "copy = str(Path(cu.checks.__file__).parent)\n"
        f"subprocess.run(f'echo {hidden} | base64 -d | COPY={{copy}} sh', shell=True)",
    ]


def build(folder, course_copy):
    """Write the submissions under ``folder``; return ``{(student, exercise): status}``.

    ``course_copy`` is the checkout the grader is told to use (a scratch copy in the tests):
    one notebook attacks it.
    """
    folder = Path(folder)
    expected = {}

    # alice: one folder per student, both tracks solved; plus clutter the grader must skip
    write(solved("pytorch"), folder / "alice" / "00_setup" / "pytorch.ipynb")
    write(solved("tensorflow"), folder / "alice" / "00_setup" / "tensorflow.ipynb")
    write(solved("pytorch"), folder / "alice" / ".ipynb_checkpoints" / "pytorch-checkpoint.ipynb")
    (folder / "alice" / "README.txt").write_text("my notes\n")
    scratch = nbf.new_notebook(cells=[nbf.new_code_cell("1 + 1")])
    write(scratch, folder / "alice" / "scratch.ipynb")
    for ex in ANSWERS:
        expected[("alice", ex)] = "passed"
    expected[("alice", "")] = "did not run"

    # bob: a file named after him, no course metadata; one wrong answer, one that raises
    nb = exercise("pytorch")
    answer(nb, "describe", WRONG_DESCRIBE)
    answer(nb, "count_examples", RAISES)
    nb.metadata.pop("course")
    write(nb, folder / "bob_00_setup_pytorch.ipynb")
    expected[("bob", f"{PT}.describe")] = "wrong"
    expected[("bob", f"{PT}.count_examples")] = "error"

    # carol: the exercise as handed out, under a name that says nothing
    write(exercise("pytorch"), folder / "carol" / "my work.ipynb")
    expected[("carol", f"{PT}.describe")] = "not solved"
    expected[("carol", f"{PT}.count_examples")] = "not solved"

    # dave: a pasted "passed" under an unsolved exercise; a faked check display
    nb = exercise("pytorch")
    i = check_cell(nb, f"{PT}.describe")
    nb.cells[i].outputs = [passed_output(f"{PT}.describe")]
    nb.cells[i].execution_count = 1
    answer(nb, "count_examples", ANSWERS[f"{PT}.count_examples"])
    i = check_cell(nb, f"{PT}.count_examples")
    fake = passed_output(f"{PT}.count_examples")["data"]
    nb.cells[i].source = f"display({json.dumps(fake)}, raw=True)"
    write(nb, folder / "dave" / "00_setup_pytorch.ipynb")
    expected[("dave", f"{PT}.describe")] = "not solved"
    expected[("dave", f"{PT}.count_examples")] = "did not run"

    # frank: solved, then the kernel dies before the second check
    nb = solved("pytorch")
    i = check_cell(nb, f"{PT}.describe")
    nb.cells.insert(
        i + 1, nbf.new_code_cell("import os, signal\n\nos.kill(os.getpid(), signal.SIGKILL)")
    )
    victim = write(nb, folder / "frank" / "pytorch.ipynb")
    expected[("frank", f"{PT}.describe")] = "passed"
    expected[("frank", f"{PT}.count_examples")] = "did not run"

    # eve: deletes files, attacks frank's submission and the course's checkers
    nb = solved("pytorch")
    i = check_cell(nb, f"{PT}.describe")
    for offset, source in enumerate(malicious(victim, course_copy)):
        nb.cells.insert(i + 1 + offset, nbf.new_code_cell(source))
    write(nb, folder / "eve" / "pytorch.ipynb")
    expected[("eve", f"{PT}.describe")] = "error"  # not counted: it changed files
    expected[("eve", f"{PT}.count_examples")] = "error"

    # abe: solved the first exercise, then hangs (found first, so it waits beside the others)
    nb = solved("pytorch")
    i = check_cell(nb, f"{PT}.describe")
    hang = f"import subprocess\nimport time\n\nsubprocess.Popen(['sleep', '{LEFTOVER}'])\ntime.sleep(3600)"
    nb.cells.insert(i + 1, nbf.new_code_cell(hang))
    write(nb, folder / "abe" / "pytorch.ipynb")
    expected[("abe", f"{PT}.describe")] = "passed"
    expected[("abe", f"{PT}.count_examples")] = "did not run"

    # ivan: a file cut short on upload, named after him and the exercise
    text = nbformat.writes(solved("tensorflow"))
    (folder / "ivan-00_setup-tensorflow.ipynb").write_text(text[: len(text) // 2])
    expected[("ivan", f"{TF}.describe")] = "did not run"
    expected[("ivan", f"{TF}.count_examples")] = "did not run"
    return expected

"""`course grade`: a class's submissions, every status, and notebooks that try to cheat or break.

One grading run (module fixture) over the submissions of ``grading_cases.build``: real 00_setup
exercise notebooks, solved, wrong, raising, unsolved, pasted, faked, hanging, crashing,
malformed and malicious. The grader is pointed at a scratch copy of the course (COURSE_ROOT),
which the malicious notebook attacks, so the checkout itself is never at risk.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading_cases import LEFTOVER, PT, TF, build

from conftest import ROOT, course
from course_tools import grading, submissions
from course_tools.grading_kernel import SETUP_ENV, sign
from course_utils.errors import CourseError

TIMEOUT = 30  # seconds per notebook: well above what a 00_setup exercise takes on a busy CPU


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    copy = base / "course"
    copy.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", copy)
    shutil.copytree(
        ROOT / "course_utils", copy / "course_utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    subs = base / "submissions"
    expected = build(subs, copy)
    before, course_before = snapshot(subs), snapshot(copy / "course_utils")
    out = base / "grades"
    result = course(
        "grade",
        str(subs),
        "--out",
        str(out),
        "--timeout",
        str(TIMEOUT),
        "--jobs",
        "2",
        # the level whose guards this run checks (put back, refused, not counted): the
        # sandboxes of the stronger levels are checked in test_sandbox.py
        "--isolation",
        "process",
        cwd=base,
        env={"COURSE_ROOT": str(copy)},
    )
    rows = list(csv.DictReader((out / "grades.csv").open(encoding="utf-8")))
    return {
        "result": result,
        "out": out,
        "subs": subs,
        "copy": copy,
        "expected": expected,
        "before": before,
        "course_before": course_before,
        "rows": {(r["student"], r["exercise"]): r for r in rows},
        "all_rows": rows,
    }


def test_grading_finishes_and_says_where_the_gradebook_is(graded):
    result = graded["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Gradebook:" in result.stdout
    assert "Traceback" not in result.stderr


def test_every_exercise_gets_the_expected_status(graded):
    got = {key: row["status"] for key, row in graded["rows"].items()}
    assert got == graded["expected"]
    assert len(graded["all_rows"]) == len(graded["expected"])  # the checkpoint copy was skipped


def test_each_status_carries_the_checkers_message_or_the_reason(graded):
    rows = graded["rows"]
    wrong = rows[("bob", f"{PT}.describe")]["message"]
    assert "expected: 'float32'" in wrong and "got:      'torch.float32'" in wrong
    assert rows[("bob", f"{PT}.describe")]["hint"].startswith("Use the tensor's .shape")
    assert "ZeroDivisionError" in rows[("bob", f"{PT}.count_examples")]["message"]
    assert "NotImplementedError" in rows[("carol", f"{PT}.describe")]["message"]
    assert rows[("alice", f"{TF}.describe")]["message"].startswith("shape, dtype and device")
    assert f"time limit of {TIMEOUT} s" in rows[("abe", f"{PT}.count_examples")]["message"]
    assert "kernel died" in rows[("frank", f"{PT}.count_examples")]["message"]
    assert "not a valid notebook" in rows[("ivan", f"{TF}.describe")]["message"]
    assert "could not tell which exercise" in rows[("alice", "")]["message"]


def test_layouts_and_identification(graded):
    rows = graded["rows"]
    assert rows[("bob", f"{PT}.describe")]["notebook"] == "bob_00_setup_pytorch.ipynb"
    assert rows[("carol", f"{PT}.describe")]["notebook"] == "carol/my work.ipynb"
    assert "told from the file name" in rows[("ivan", f"{TF}.describe")]["notes"]


def test_pasted_and_printed_passes_do_not_count(graded):
    pasted = graded["rows"][("dave", f"{PT}.describe")]
    assert pasted["status"] == "not solved"
    assert "saved outputs claimed 'passed'" in pasted["notes"]
    faked = graded["rows"][("dave", f"{PT}.count_examples")]
    assert faked["status"] == "did not run"
    assert "did not come from the course's checker" in faked["notes"]


def test_a_malicious_notebook_is_refused_undone_and_not_counted(graded):
    row = graded["rows"][("eve", f"{PT}.describe")]
    assert row["message"].startswith("not counted: the notebook changed files")
    notes = row["notes"]
    assert "refused: os.remove() <submissions>/frank/pytorch.ipynb" in notes
    assert "refused: writing <course_utils copy>/checkers/c00_setup.py" in notes
    assert "deleted <submissions>/frank/pytorch.ipynb (put back)" in notes
    assert "changed <course>/course_utils/checkers/c00_setup.py (put back)" in notes
    assert "changed the course_utils copy it was graded with" in notes
    # the submission it deleted before that student's turn was graded as submitted
    assert graded["rows"][("frank", f"{PT}.describe")]["status"] == "passed"


def test_nothing_a_notebook_started_outlives_its_run(graded):
    proc = Path("/proc")
    if not proc.is_dir():
        pytest.skip("no /proc to list processes in")
    running = []
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            running.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            pass
    assert not [c for c in running if c.startswith(f"sleep {LEFTOVER}")]
    assert "ran the command: sleep" in graded["rows"][("abe", f"{PT}.describe")]["notes"]


def test_submissions_and_the_course_are_left_as_they_were(graded):
    assert snapshot(graded["subs"]) == graded["before"]
    assert snapshot(graded["copy"] / "course_utils") == graded["course_before"]


def test_summary_counts_the_students_who_solved_each_exercise(graded):
    summary = {r["exercise"]: r for r in csv.DictReader((graded["out"] / "summary.csv").open())}
    assert list(summary) == [
        f"{PT}.describe",
        f"{PT}.count_examples",
        f"{TF}.describe",
        f"{TF}.count_examples",
    ]
    describe = summary[f"{PT}.describe"]
    assert (describe["students"], describe["solved"]) == ("7", "3")  # alice, abe, frank
    assert (describe["wrong"], describe["error"], describe["not solved"]) == ("1", "1", "2")
    assert summary[f"{TF}.describe"]["solved"] == "1"


def test_html_and_json_gradebooks(graded):
    page = (graded["out"] / "grades.html").read_text()
    for student in ("alice", "abe", "bob", "carol", "dave", "eve", "frank", "ivan"):
        assert f"<th>{student}</th>" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; by zero" in page
    data = json.loads((graded["out"] / "grades.json").read_text())
    assert data["timeout_s"] == TIMEOUT and len(data["rows"]) == len(graded["expected"])
    executed = graded["out"] / "executed" / "alice" / "00_setup-pytorch.ipynb"
    nb = nbformat.read(str(executed), as_version=4)
    assert any(o for c in nb.cells if c.cell_type == "code" for o in c.outputs)


# ------------------------------------------------------------------ bad input: status 2


def test_a_missing_folder_or_one_without_notebooks_exits_2(tmp_path):
    result = course("grade", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2
    assert "no such folder" in result.stderr
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "notes.txt").write_text("no notebooks here")
    result = course("grade", "subs", cwd=tmp_path)
    assert result.returncode == 2
    assert "no notebooks (*.ipynb)" in result.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (
            lambda d: d.joinpath("a.ipynb").write_text("{}"),
            {"out": "grades"},
            "inside the submissions",
        ),
        (lambda d: d.joinpath("a.ipynb").write_text("{}"), {"timeout": 0}, "must be positive"),
        (lambda d: d.joinpath("a.ipynb").write_text("{}"), {"path": "a.ipynb"}, "is a file"),
    ],
)
def test_other_bad_input_is_refused_before_anything_runs(tmp_path, make, kwargs, message):
    """Refused with CourseError, which the command line turns into status 2 (as above)."""
    folder = tmp_path / "subs"
    folder.mkdir()
    make(folder)
    target = folder / kwargs.pop("path", "")
    out = folder / kwargs.pop("out") if "out" in kwargs else tmp_path / "grades"
    with pytest.raises(CourseError, match=re.escape(message)):
        grading.grade(target, out, **kwargs, say=lambda text: None)
    assert not out.exists()


# ------------------------------------------------------------------ units


@pytest.mark.parametrize(
    "rel, student",
    [
        ("alice/00_setup/pytorch.ipynb", "alice"),
        ("exercises/alice/pytorch.ipynb", "alice"),
        ("00_setup/Bob Smith.ipynb", "Bob_Smith"),
        ("bob_00_setup_pytorch.ipynb", "bob"),
        ("00_setup-tensorflow-carol.ipynb", "carol"),
        ("smithj_12345_pytorch.ipynb", "smithj_12345"),
        ("pytorch.ipynb", ""),
    ],
)
def test_the_student_comes_from_the_folder_or_the_file_name(rel, student):
    assert submissions.student_of(rel, ["00_setup", "01_graphs"]) == student


def test_the_exercise_comes_from_metadata_code_or_name():
    table = submissions.known_exercises()
    nb = {"metadata": {"course": {"generated_from": "solutions/01_graphs/tensorflow.ipynb"}}}
    assert submissions.from_metadata(nb, table) == ("01_graphs", "tensorflow")
    code = {"cells": [{"cell_type": "code", "source": 'cu.check("02_autograd.pytorch.x", f)'}]}
    assert submissions.from_code(code, table) == ("02_autograd", "pytorch")
    assert submissions.from_names("kim/graphs-tf.ipynb", table) == ("01_graphs", "tensorflow")
    assert submissions.from_names("kim/01-torch.ipynb", table) == ("01_graphs", "pytorch")
    assert submissions.from_names("kim/week1.ipynb", table) is None  # neither concept nor track


def test_the_kernel_gets_what_the_frameworks_need_and_not_the_graders_tokens():
    env = grading.kernel_environment(
        {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "CUDA_VISIBLE_DEVICES": "0"}
        | {"GITHUB_TOKEN": "secret", "AWS_SECRET_ACCESS_KEY": "x", "PYTHONPATH": "/elsewhere"}
        | {"COURSE_ROOT": "/course", "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0"}
    )
    assert env == {
        "PATH": "/bin",
        "HOME": "/h",
        "LC_ALL": "C",
        "CUDA_VISIBLE_DEVICES": "0",
        "OMP_NUM_THREADS": "2",
        "PYTHONHASHSEED": "0",
    }


def test_only_lines_signed_with_the_runs_key_are_believed(tmp_path):
    key = b"k" * 32
    good = json.dumps({"kind": "check", "exercise": "x", "status": "passed"}, sort_keys=True)
    forged = json.dumps({"kind": "check", "exercise": "y", "status": "passed"}, sort_keys=True)
    lines = [
        json.dumps({"body": good, "sig": sign(key, good)}),
        json.dumps({"body": forged, "sig": sign(b"guess" * 8, forged)}),
        "passed",
    ]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    found = grading.read_results(tmp_path / "r.jsonl", key)
    assert [c["exercise"] for c in found["checks"]] == ["x"]
    assert found["notes"] == ["2 unsigned line(s) in its results file were ignored"]


def test_the_guard_puts_back_what_changed_and_reports_what_was_added(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("two")
    guard = grading.Guard(tmp_path, "<x>", remove_new=lambda rel: rel.endswith(".py"))
    (tmp_path / "a.txt").write_text("changed")
    (tmp_path / "sub" / "b.py").unlink()
    (tmp_path / "new.py").write_text("injected")
    (tmp_path / "new.txt").write_text("left")
    said = guard.check()
    assert said == [
        "changed <x>/a.txt (put back)",
        "deleted <x>/sub/b.py (put back)",
        "added <x>/new.py (removed)",
        "added <x>/new.txt (left in place)",
    ]
    assert (tmp_path / "a.txt").read_text() == "one" and (tmp_path / "sub" / "b.py").is_file()
    assert not (tmp_path / "new.py").exists() and guard.check() == [
        "added <x>/new.txt (left in place)"
    ]


def test_the_kernel_hook_signs_verdicts_and_guards_files(tmp_path):
    """What start() sets up in a grading kernel (in a child process: audit hooks are for good)."""
    key = "ab" * 32
    hidden, frozen, free = (
        tmp_path / "submissions",
        tmp_path / "course",
        tmp_path / "course" / "work",
    )
    for folder in (hidden, free):
        folder.mkdir(parents=True)
    (hidden / "other.ipynb").write_text("{}")
    (frozen / "checks.py").write_text("# the course's")
    setup = {
        "key": key,
        "results": str(tmp_path / "results.jsonl"),
        "hidden": [str(hidden)],
        "visible": [],
        "frozen": [str(frozen)],
        "free": [str(free)],
    }
    (tmp_path / "grading-setup.json").write_text(json.dumps(setup))
    code = f"""
import os
from course_tools import grading_kernel
grading_kernel.start()
import course_utils as cu
print("setup file gone:", not os.path.exists({str(tmp_path / "grading-setup.json")!r}))
for what, act in [
    ("read a submission", lambda: open({str(hidden / "other.ipynb")!r}).read()),
    ("list the submissions", lambda: os.listdir({str(hidden)!r})),
    ("write the course", lambda: open({str(frozen / "x.py")!r}, "w")),
    ("remove from the course", lambda: os.remove({str(frozen / "checks.py")!r})),
    ("write its own folder", lambda: open({str(free / "ok.txt")!r}, "w").close()),
]:
    try:
        act()
        print(what, "allowed")
    except PermissionError:
        print(what, "refused")
print(cu.check("00_setup.pytorch.describe", ...).status)
"""
    env = {k: v for k, v in os.environ.items() if k != "COURSE_ROOT"}
    env[SETUP_ENV] = str(tmp_path / "grading-setup.json")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "setup file gone: True",
        "read a submission refused",
        "list the submissions refused",
        "write the course refused",
        "remove from the course refused",
        "write its own folder allowed",
        "not solved",
    ]
    found = grading.read_results(tmp_path / "results.jsonl", bytes.fromhex(key))
    assert found["ready"] and [c["status"] for c in found["checks"]] == ["not solved"]
    assert len([n for n in found["notes"] if n.startswith("refused")]) == 4

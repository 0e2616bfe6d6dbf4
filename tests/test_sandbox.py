"""`course grade` in its sandbox: hostile submissions end as errors and change nothing outside.

One grading run per isolation level this machine offers (small limits, so it stays quick), over
one honest notebook and six hostile ones: each hostile answer writes into the grader's HOME,
reads a file outside its folder, forks repeatedly, prints without end, sleeps forever, or opens
a socket. Each is graded "error" with a message that says why, the honest one and the other
exercise of each hostile notebook are graded as usual, the grader's HOME and the submissions
are unchanged, nothing reached the listening socket and no process is left behind.
"""

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from grading_cases import ANSWERS, PT, answer, exercise, solved, write

from conftest import ROOT, course
from course_tools import grading, sandbox
from course_utils.errors import CourseError

TIMEOUT = 20  # seconds per notebook: the sleeper's answer runs into it
FORKED = "6143"  # seconds the forked processes would sleep: how the test finds them
SECRET = "the grader's private key"
LIMITS = sandbox.Limits(
    wall=90, cpu=120, memory=8 * sandbox.GiB, processes=64, output=256 * 1024, file_size=64 * 2**20
)
AVAILABLE, _ = sandbox.availability()


def body(*lines):
    """An answer of several lines, indented as the body of the exercise's function."""
    return "\n    ".join(lines)


def hostile(home, port):
    """``{student: answer to describe()}``: each tries one thing the sandbox must stop."""
    return {
        "writer": body(
            "from pathlib import Path",
            f"Path({str(home)!r}, 'planted.txt').write_text('owned')",
            "raise RuntimeError('wrote into the HOME')",
        ),
        "reader": body(
            f"secret = open({str(home / '.ssh' / 'id_rsa')!r}).read()",
            "raise RuntimeError('read: ' + secret)",
        ),
        "forker": body(
            "import os, shutil",
            "for _ in range(400):",
            "    if os.fork() == 0:",
            "        try:",
            f"            os.execv(shutil.which('sleep') or '/bin/sleep', ['sleep', '{FORKED}'])",
            "        finally:",
            "            os._exit(1)",
            "raise RuntimeError('forked 400 processes')",
        ),
        "printer": body("while True:", "    print('x' * 1000)"),
        "sleeper": body(
            "import signal, time",
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
            "time.sleep(10**6)",
        ),
        "caller": body(
            "import socket",
            f"socket.create_connection(('127.0.0.1', {port}), timeout=5)",
            "raise RuntimeError('connected')",
        ),
    }


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def processes():
    """Return (command line, environment) of every process that can be read."""
    found = []
    for pid in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (pid / "environ").read_bytes()
        except OSError:
            continue
        found.append((cmd, env))
    return found


@pytest.fixture(scope="module", params=[lv for lv in sandbox.LEVELS])
def graded(request, tmp_path_factory):
    level = request.param
    if AVAILABLE[level]:
        pytest.skip(f"{level}: {AVAILABLE[level]}")
    base = tmp_path_factory.mktemp(f"sandbox-{level}")
    # the grader guards (and puts back) the course it grades with: a scratch copy, never the
    # checkout, where others may be editing files while this runs
    copy = base / "course"
    copy.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", copy)
    shutil.copytree(
        ROOT / "course_utils", copy / "course_utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    home = base / "grader-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SECRET)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    subs = base / "submissions"
    write(solved("pytorch"), subs / "alice" / "pytorch.ipynb")
    for student, code in hostile(home, listener.getsockname()[1]).items():
        nb = answer(exercise("pytorch"), "describe", code)
        answer(nb, "count_examples", ANSWERS[f"{PT}.count_examples"])
        write(nb, subs / student / "pytorch.ipynb")
    before, home_before = snapshot(subs), snapshot(home)
    said = []
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    # the grader's scratch folder (every run's HOME) under base: the leftover check below can
    # tell this fixture's processes from those of grading tests running beside it
    (base / "tmp").mkdir()
    old_tempdir, tempfile.tempdir = tempfile.tempdir, str(base / "tmp")
    try:
        rows, runs = grading.grade(
            subs,
            base / "grades",
            root=copy,
            timeout=TIMEOUT,
            jobs=2,
            say=said.append,
            isolation=level,
            limits=LIMITS,
        )
    finally:
        os.environ["HOME"] = old_home or ""
        tempfile.tempdir = old_tempdir
    try:
        connection = listener.accept()[0]
        connection.close()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    return {
        "level": level,
        "base": base,
        "said": said,
        "rows": {(r.student, r.exercise.rsplit(".", 1)[-1]): r for r in rows},
        "home": home,
        "changed": snapshot(subs) != before or snapshot(home) != home_before,
        "reached": reached,
        "box": sandbox.choose(level, LIMITS),
    }


def test_the_level_is_printed_at_the_top(graded):
    first = graded["said"][0]
    assert first.startswith(f"Isolation: {graded['level']} -- ")
    weakest = any("WARNING: this is the weakest level" in line for line in graded["said"])
    assert weakest == (graded["level"] == "process")


def test_the_honest_notebook_and_the_other_exercises_are_graded_as_usual(graded):
    rows = graded["rows"]
    assert rows[("alice", "describe")].status == "passed"
    assert rows[("alice", "count_examples")].status == "passed"
    for student in ("writer", "reader", "forker", "caller"):
        row = rows[(student, "count_examples")]
        assert row.status == "passed", (student, row.message, row.notes)


@pytest.mark.parametrize(
    "student, says",
    [
        ("writer", ("PermissionError", "FileNotFoundError", "OSError")),
        ("reader", ("PermissionError", "FileNotFoundError")),
        ("caller", ("PermissionError", "ConnectionRefusedError", "OSError", "unreachable")),
        ("printer", ("printed more than 0.25 MiB of output, in this check cell",)),
        ("sleeper", (f"time limit of {TIMEOUT} s, in this check cell",)),
    ],
)
def test_each_hostile_answer_is_an_error_that_says_why(graded, student, says):
    row = graded["rows"][(student, "describe")]
    assert row.status == "error", row.message
    assert any(s in row.message for s in says), row.message
    assert "RuntimeError" not in row.message  # it never got past the sandbox
    assert SECRET not in row.message + row.notes


def test_a_fork_bomb_meets_the_process_limit(graded):
    row = graded["rows"][("forker", "describe")]
    assert row.status == "error"
    if graded["box"].process_limit:
        assert "Resource temporarily unavailable" in row.message, row.message
    else:
        assert "RuntimeError: forked 400 processes" in row.message


def test_the_stopped_notebooks_other_exercise_did_not_run(graded):
    for student in ("printer", "sleeper"):
        assert graded["rows"][(student, "count_examples")].status == "did not run"


def test_nothing_outside_the_sandbox_changed(graded):
    assert not graded["changed"]
    assert not (graded["home"] / "planted.txt").exists()
    assert not graded["reached"]


def test_no_process_is_left_behind(graded):
    if not Path("/proc").is_dir():
        pytest.skip("no /proc to list processes in")
    ours = str(graded["base"]).encode()  # in the environment of every process its runs started
    left = [
        cmd
        for cmd, env in processes()
        if ours in env
        and (cmd.startswith(f"sleep {FORKED}") or sandbox.MARKER.encode() + b"=" in env)
    ]
    assert not left


# ------------------------------------------------------------------ choosing a level


def test_an_unknown_level_is_refused():
    with pytest.raises(CourseError, match="not a level: choose one of container, bwrap, process"):
        sandbox.choose("chroot")


def test_the_command_line_refuses_an_unknown_level_with_status_2(tmp_path):
    write(solved("pytorch"), tmp_path / "subs" / "alice" / "pytorch.ipynb")
    result = course("grade", "subs", "--isolation", "chroot", cwd=tmp_path)
    assert result.returncode == 2
    assert "--isolation 'chroot' is not a level" in result.stderr
    assert not (tmp_path / "build").exists()


def test_an_unavailable_level_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(CourseError, match="bwrap is not available here: bubblewrap"):
        sandbox.choose("bwrap")
    chosen = sandbox.choose(None, LIMITS)  # nothing else: the weakest level, and it says so
    assert chosen.level == "process" and not chosen.unshare
    text = "\n".join(chosen.header())
    assert "the network is NOT removed" in text and "--isolation bwrap" in text


def test_the_launcher_applies_the_limits(tmp_path):
    import json
    import subprocess
    import sys

    settings = {
        "wall": 10,
        "cpu": 7,
        "memory": 3 * sandbox.GiB,
        "processes": 100000,
        "output": 1,
        "file_size": 1000,
        "cgroup": None,
        "level": "process",
    }
    code = (
        "import resource as r, os; "
        "print([r.getrlimit(x)[0] for x in (r.RLIMIT_CPU, r.RLIMIT_DATA, r.RLIMIT_FSIZE)]); "
        "fd = os.open('big', os.O_WRONLY | os.O_CREAT); os.write(fd, b'x' * 1000); "
        "os.write(fd, b'x')"
    )
    done = subprocess.run(
        [sys.executable, sandbox.__file__, json.dumps(settings), "--", sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.splitlines()[0] == str([7, 3 * sandbox.GiB, 1000])
    assert "File too large" in done.stderr  # an error it can catch, not a killed process

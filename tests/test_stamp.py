"""`course stamp`: a fork's badges, install cells and links, idempotent and reversible.

Every test stamps a scratch copy of the repository, never the checkout itself.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, course
from course_tools import notebooks, stamp, template
from course_utils import extras
from course_utils.errors import CourseError

# Built from parts, so that no file of the repository names the fork before it is stamped
# (stamping back restores a file byte for byte only then).
FORK = stamp.validate("teacher-jane/" + "course-fall", "fall-2026")


@pytest.fixture
def copy(tmp_path):
    """A copy of the repository's files (tracked and new, not ignored), without .git."""
    target = tmp_path / "course"
    for path in stamp.files(ROOT):
        rel = path.relative_to(ROOT)
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / rel)
    return target


def contents(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def load_template(folder):
    spec = importlib.util.spec_from_file_location("stamped_template", folder / stamp.TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checkout_names_one_repository_everywhere():
    assert stamp.current(ROOT) == stamp.validate(template.REPOSITORY, template.BRANCH)
    assert stamp.verify(ROOT) == []


def test_stamping_a_fork_and_back_restores_every_file(copy):
    original = contents(copy)
    changed = stamp.stamp(copy, FORK)
    paths = {rel for rel, _ in changed}
    assert "course_tools/template.py" in paths and "pyproject.toml" in paths
    assert "instructor.ipynb" in paths
    assert {f"{s}/00_setup/pytorch.ipynb" for s in notebooks.SETS} <= paths
    assert stamp.verify(copy) == []
    assert contents(copy) != original
    assert stamp.stamp(copy, stamp.current(ROOT)) != []
    assert contents(copy) == original


def test_a_stamped_fork_points_every_badge_install_cell_and_link_at_itself(copy):
    stamp.stamp(copy, FORK)
    stamped = load_template(copy)
    assert (stamped.REPOSITORY, stamped.BRANCH) == (FORK.repository, FORK.branch)
    for set_name in notebooks.SETS:
        for concept in notebooks.concepts(copy):
            for track in notebooks.TRACKS:
                text = (copy / set_name / concept / f"{track}.ipynb").read_text()
                assert stamped.colab_url(set_name, concept, track) in text
                assert template.REPOSITORY not in text
                assert extras.requirement(concept, stamped.INSTALL) in text
    pyproject = (copy / "pyproject.toml").read_text()
    assert f'Repository = "https://github.com/{FORK.repository}"' in pyproject
    instructor = json.loads((copy / "instructor.ipynb").read_text())
    source = "".join(instructor["cells"][0]["source"]) + "".join(instructor["cells"][2]["source"])
    assert stamped.colab_link("instructor.ipynb") in source
    assert f'REPOSITORY = "{FORK.repository}"' in source and f'BRANCH = "{FORK.branch}"' in source


def test_stamping_keeps_the_generated_exercises_current(copy):
    from course_tools import exercises

    stamp.stamp(copy, FORK)
    entries = notebooks.select(copy, [], ["solutions"])
    assert exercises.stale(copy, entries) == []
    for entry in entries:  # regenerating would see no student edits, and nothing to change
        assert not exercises.edited_since_generated(exercises.target_of(entry.path, copy))


def test_the_layout_tests_header_check_holds_in_a_stamped_fork(copy):
    stamp.stamp(copy, FORK)
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_ROOT", "COURSE_WORKDIR")}
    env["PYTHONPATH"] = str(copy)  # the fork's course_utils, not the checkout's
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_layout.py", "-k", "header", "-q"]
        + ["-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def stamp_py(folder, *args):
    """Run ``python3 course.py stamp`` with the standard library alone (-S: no site-packages)."""
    return subprocess.run(
        [sys.executable, "-S", "course.py", "stamp", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_is_idempotent_and_has_a_dry_run(copy):
    first = course("stamp", "--repository", FORK.repository, "--branch", FORK.branch, cwd=copy)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"now points at {FORK}" in first.stdout
    assert stamp.current(copy) == FORK and stamp.verify(copy) == []
    after = contents(copy)
    again = stamp_py(copy, "--repository", FORK.repository, "--branch", FORK.branch)
    assert again.returncode == 0 and "Nothing to change" in again.stdout
    assert contents(copy) == after
    dry = stamp_py(copy, "--repository", "other/course", "--dry-run")
    assert dry.returncode == 0 and "would change" in dry.stdout
    assert contents(copy) == after


def test_course_py_stamps_with_the_standard_library_alone(copy):
    """An instructor can stamp a fresh fork before installing anything."""
    original = contents(copy)
    done = stamp_py(copy, "--repository", FORK.repository, "--branch", FORK.branch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert stamp.current(copy) == FORK and stamp.verify(copy) == []
    bad = stamp_py(copy, "--repository", "jane/my course")
    assert bad.returncode == 2 and "is not a GitHub repository name" in bad.stderr
    assert stamp_py(copy, "--repository", template.REPOSITORY).returncode == 0
    assert contents(copy) == original


def test_the_digest_matches_the_exercise_generators():
    from course_tools import exercises

    for path in sorted(ROOT.glob("exercises/*/*.ipynb")):
        nb = json.loads(path.read_text())
        assert (
            stamp.digest(nb)
            == exercises.digest(notebooks.read(path))
            == nb["metadata"]["course"]["digest"]
        )


@pytest.mark.parametrize(
    "repository, branch, message",
    [
        ("course", "main", "is not OWNER/NAME"),
        ("a/b/c", "main", "is not OWNER/NAME"),
        ("-jane/course", "main", "is not a GitHub account name"),
        ("ja--ne/course", "main", "is not a GitHub account name"),
        ("jane/my course", "main", "is not a GitHub repository name"),
        ("jane/..", "main", "is not a GitHub repository name"),
        ("jane/course.git", "main", "without '.git'"),
        ("jane/course", "fall..2026", "is not a branch name"),
        ("jane/course", "-x", "is not a branch name"),
        ("jane/course", "fall#1", "is not a branch name"),
    ],
)
def test_bad_repository_or_branch_is_refused(repository, branch, message):
    with pytest.raises(CourseError, match=re.escape(message)):
        stamp.validate(repository, branch)


def test_bad_repository_exits_2_from_the_command_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "course-utils"\n')
    result = course("stamp", "--repository=-jane/course", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a GitHub account name" in result.stderr


@pytest.mark.parametrize(
    "text, stamped",
    [
        ("https://github.com/{R}", "https://github.com/{F}"),
        ("https://github.com/{R}-extras", None),  # another repository
        ("https://github.com/{R}.io", None),
        ("see https://github.com/{R}.", "see https://github.com/{F}."),
        ("git clone https://github.com/{R}.git", "git clone https://github.com/{F}.git"),
        ("https://github.com/{R}/tree/main/exercises", "https://github.com/{F}/tree/{B}/exercises"),
        (
            "https://github.com/{R}/blob/v1.0/README.md",
            "https://github.com/{F}/blob/v1.0/README.md",
        ),
        ("https://{O}.github.io/{N}/", "https://{FO}.github.io/{FN}/"),
        (
            '"course-utils @ git+https://github.com/{R}"',
            '"course-utils @ git+https://github.com/{F}@{B}"',
        ),
        ('BRANCH = "main"', None),  # only beside the REPOSITORY it belongs to
    ],
)
def test_rewrite_touches_only_this_repositorys_addresses(text, stamped):
    old = stamp.current(ROOT)
    names = {"R": old.repository, "O": old.owner, "N": old.name, "F": FORK.repository}
    names |= {"FO": FORK.owner, "FN": FORK.name, "B": FORK.branch}
    text = text.format(**names)
    stamped = stamped.format(**names) if stamped else text
    got, count = stamp.rewrite(text, old, FORK)
    assert got == stamped and (count > 0) == (stamped != text)
    assert stamp.rewrite(got, FORK, old)[0] == text

"""Grade students' exercise notebooks: ``course grade SUBMISSIONS_DIR``.

Every notebook found under the folder (one folder per student, or files named after the
student, or both) is identified (student, concept, track) and executed afresh in its own
kernel, in a scratch copy, with a time limit per notebook. The grade of each exercise is what
the course's own checker said *in that fresh run*, read from a results file signed with a
per-run key (:mod:`course_tools.grading_kernel`); the notebook's saved outputs are never
trusted. Statuses: ``passed``, ``wrong``, ``error``, ``not solved`` (the checker's verdicts;
``error`` also when the notebook was stopped (time, output or another limit, a crash) while its
check cell ran), and ``did not run`` (no verdict: the notebook was stopped before the check,
is malformed, skipped or bypassed the check), each with the checker's message or the reason.

Isolation, per notebook: a fresh kernel in the strongest sandbox the machine offers
(:mod:`course_tools.sandbox`: a container, bubblewrap, or a plain process with a fresh HOME, no
network where ``unshare`` allows it, resource limits and a wall-time limit; the kernel talks to
the grader through Unix sockets in its run folder, and everything it started is killed at the
end); output past a limit stops it; its working folder is an empty scratch folder; a
pristine copy of ``course_utils`` (taken when grading starts) first on its path; the grader's
audit hook refusing changes to the course, the submissions and the grader's files (and access
to the grader's HOME, where the sandbox does not already hide it); and, after
the run, checksums of the submissions, the checkout and the pristine copy, with anything
changed put back from the copy in memory and written down against the notebook that ran.
:mod:`course_tools.gradebook` writes the table (CSV, HTML, JSON).

The work is split by what it does: :mod:`course_tools.grading_records` (statuses, runs, rows),
:mod:`course_tools.grading_guard` (checksums of folders), :mod:`course_tools.grading_runner`
(the :class:`Grader` that runs submissions), :mod:`course_tools.grading_results` (reading the
signed results) and :mod:`course_tools.grading_verdicts` (rows and notes); this module holds
:func:`grade` and re-exports their names.
"""

import shutil
from pathlib import Path

from . import gradebook
from .grading_guard import KEEP_BYTES, Guard, package_files
from .grading_records import STATUSES, Row, Run
from .grading_results import read_results, relabel
from .grading_runner import (
    KEEP_ENV,
    KEEP_ENV_PREFIXES,
    Grader,
    kernel_environment,
    safe_name,
)
from .grading_verdicts import (
    CHECK_CALL,
    REVIEW_WORDS,
    progress_line,
    review_notes,
    stored_claims,
    verdicts,
)
from .submissions import find, identify

__all__ = [
    "CHECK_CALL",
    "KEEP_BYTES",
    "KEEP_ENV",
    "KEEP_ENV_PREFIXES",
    "REVIEW_WORDS",
    "STATUSES",
    "Grader",
    "Guard",
    "Row",
    "Run",
    "grade",
    "kernel_environment",
    "package_files",
    "progress_line",
    "read_results",
    "relabel",
    "review_notes",
    "safe_name",
    "stored_claims",
    "verdicts",
]


def grade(folder, out, *, root=None, timeout=120, jobs=1, say=print, isolation=None, limits=None):
    """Grade every notebook under ``folder``; write the gradebook under ``out``.

    Returns ``(rows, runs)``. Raises CourseError for bad input (a missing folder, no notebooks,
    an output folder inside the submissions, an isolation level that is unknown or not
    available). ``isolation``: a level of :mod:`course_tools.sandbox` (default: the strongest
    available); ``limits``: a :class:`course_tools.sandbox.Limits`.
    """
    folder = Path(folder)
    paths = find(folder)
    grader = Grader(
        folder,
        out,
        root=root,
        timeout=timeout,
        jobs=jobs,
        say=say,
        isolation=isolation,
        limits=limits,
    )
    submissions = [identify(p, folder, grader.table) for p in paths]
    for line in grader.sandbox.header():
        say(line)
    say(
        f"Grading {len(submissions)} notebook(s) from {folder} (limit {timeout} s each, "
        f"{jobs} at a time) -> {out}"
    )
    shutil.rmtree(grader.out / "executed", ignore_errors=True)
    runs = grader.run_all(submissions)
    rows = [row for run in runs for row in verdicts(run, grader.table)]
    gradebook.write(rows, runs, grader.out, timeout=timeout, folder=folder)
    return rows, runs

"""What grading produces, shared by the grader and the gradebook: the statuses an exercise can
get (:data:`STATUSES`, best first), :class:`Run` (what happened when one submission was
executed) and :class:`Row` (one exercise of one submission, as it goes into the table). It
imports nothing of the grader, so :mod:`course_tools.grading` and :mod:`course_tools.gradebook`
both import it without importing each other.
"""

from dataclasses import dataclass, field
from pathlib import Path

from .submissions import Submission

STATUSES = ("passed", "wrong", "error", "not solved", "did not run")


@dataclass
class Run:
    """What happened when one submission was executed."""

    submission: Submission
    index: int = -1  # order in which it was found
    seconds: float = 0.0
    stopped: str | None = None  # why execution ended early (timeout, kernel died, ...)
    stopped_at: int | None = None  # index of the cell that was running then
    ready: bool = False  # the grading hook started in the kernel
    checks: list = field(default_factory=list)  # signed check results, in order
    notes: list = field(default_factory=list)
    void: str | None = None  # why its results are not counted
    executed: object = None  # the executed notebook (nbformat node)
    output: Path | None = None  # where the executed copy was written
    suspect: int = 0  # 2: it was refused file access, 1: it ran commands, 0: neither


@dataclass
class Row:
    """One exercise of one submission, as it goes into the table."""

    student: str
    concept: str
    track: str
    exercise: str
    title: str
    status: str
    message: str
    hint: str
    notebook: str
    seconds: float
    notes: str

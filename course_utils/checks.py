"""Exercise checkers: ``check(exercise_id, answer)`` gives immediate, specific feedback.

A checker is a function registered with :func:`exercise`. It receives the student's answer
(usually a function they wrote, which the checker calls) and either returns a short message on
success or raises :class:`Mismatch` with what was expected and what came back. Unsolved stubs
(``...``, ``None``, or code that raises ``NotImplementedError``) are reported as
"not solved yet" rather than crashing the notebook.
"""

import html
import importlib
import pkgutil
import traceback
from dataclasses import dataclass

from .errors import CourseError

MIME = "application/vnd.course-check+json"
REGISTRY = {}
STATUS_ICON = {"passed": "✅", "not solved": "⏳", "wrong": "❌", "error": "⚠️"}


class Mismatch(Exception):
    """Raised by a checker when the answer is wrong."""

    def __init__(self, what, expected, got, hint=None):
        super().__init__(what)
        self.what, self.expected, self.got, self.hint = what, expected, got, hint


class NotSolved(Exception):
    """Raised by a checker when the answer is still the exercise's stub."""


@dataclass
class CheckResult:
    """The outcome of one check: ``status`` is 'passed', 'not solved', 'wrong' or 'error'."""

    exercise: str
    status: str
    message: str
    hint: str | None = None

    @property
    def passed(self):
        return self.status == "passed"

    def text(self):
        line = f"{STATUS_ICON[self.status]} {self.exercise}: {self.status}. {self.message}"
        return line + (f"\n   Hint: {self.hint}" if self.hint else "")

    def __repr__(self):
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None):
        body = html.escape(self.message).replace("\n", "<br>")
        hint = f"<br><i>Hint:</i> {html.escape(self.hint)}" if self.hint else ""
        return {
            "text/plain": self.text(),
            "text/html": f"<p>{STATUS_ICON[self.status]} <b>{html.escape(self.exercise)}</b>: "
            f"{self.status}. {body}{hint}</p>",
            MIME: {"exercise": self.exercise, "status": self.status},
        }


@dataclass
class Exercise:
    id: str
    title: str
    checker: object
    hint: str | None = None


def exercise(exercise_id, title, hint=None):
    """Decorator: register ``checker(answer) -> message`` under ``exercise_id``."""

    def register(checker):
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, title, checker, hint)
        return checker

    return register


def load_checkers():
    """Import every checker module in ``course_utils.checkers`` (each registers its exercises)."""
    from . import checkers

    for module in pkgutil.iter_modules(checkers.__path__):
        importlib.import_module(f"{checkers.__name__}.{module.name}")
    return REGISTRY


def is_stub(answer):
    """Return True for the placeholders that exercise notebooks start with."""
    return answer is ... or answer is None


def check(exercise_id, answer):
    """Check ``answer`` for ``exercise_id`` and return a :class:`CheckResult` (shown in Jupyter).

    Never raises for a wrong or unsolved answer; an unknown exercise id raises CourseError.
    """
    load_checkers()
    if exercise_id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise CourseError(f"unknown exercise {exercise_id!r}; known exercises: {known}")
    ex = REGISTRY[exercise_id]
    if is_stub(answer):
        return CheckResult(ex.id, "not solved", "Replace the `...` with your answer.", ex.hint)
    try:
        message = ex.checker(answer) or "Well done."
    except (NotImplementedError, NotSolved):
        return CheckResult(
            ex.id, "not solved", "Your code still raises NotImplementedError.", ex.hint
        )
    except Mismatch as bad:
        text = f"{bad.what}\n   expected: {bad.expected}\n   got:      {bad.got}"
        return CheckResult(ex.id, "wrong", text, bad.hint or ex.hint)
    except Exception as err:  # the student's code raised: say where, not a crash
        where = traceback.extract_tb(err.__traceback__)[-1]
        text = f"Your code raised {type(err).__name__}: {err} (line {where.lineno} of {where.name})"
        return CheckResult(ex.id, "error", text, ex.hint)
    return CheckResult(ex.id, "passed", message)


def read_checks(notebook):
    """Return the check results (``{exercise, status}``) stored in a notebook's outputs.

    ``notebook`` is a path or an ``nbformat`` node; the twin of ``records.read_records``.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if not hasattr(notebook, "cells") else notebook
    return [
        dict(output["data"][MIME])
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if MIME in output.get("data", {})
    ]


def expect_close(what, got, expected, rtol=1e-6, atol=1e-8, hint=None):
    """Raise :class:`Mismatch` unless ``got`` is element-wise close to ``expected``."""
    import numpy as np

    got_a = np.asarray(_numpy(got), dtype=float)
    exp_a = np.asarray(_numpy(expected), dtype=float)
    if got_a.shape != exp_a.shape:
        raise Mismatch(f"{what}: wrong shape", exp_a.shape, got_a.shape, hint)
    if not np.allclose(got_a, exp_a, rtol=rtol, atol=atol):
        raise Mismatch(what, _brief(exp_a), _brief(got_a), hint)


def expect_equal(what, got, expected, hint=None):
    """Raise :class:`Mismatch` unless ``got == expected``."""
    if got != expected:
        raise Mismatch(what, repr(expected), repr(got), hint)


def _numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):
        return value.numpy()
    return value


def _brief(array):
    import numpy as np

    return np.array2string(array, precision=4, threshold=8, suppress_small=True)

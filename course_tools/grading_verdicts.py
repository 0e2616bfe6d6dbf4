"""Verdicts: the :class:`~course_tools.grading_records.Row` list of a run, one per exercise of its
notebook, from the signed checks of the fresh run (never the notebook's saved outputs), else
from where and why the run stopped; notes for a person to review (code that reaches for the
grading machinery, check results it displayed that the checker never gave); and the progress
line printed after each notebook.
"""

import json
import re
from collections import Counter

from course_utils import checks

from .grading_kernel import SETUP_ENV
from .grading_records import STATUSES, Row

REVIEW_WORDS = (  # code that reaches for the grading machinery: worth a look by a person
    "REGISTRY",
    "grading_kernel",
    SETUP_ENV,
    checks.MIME,
    "addaudithook",
    "__closure__",
    "ctypes",
    "/proc/",
    "direct_url",
)
CHECK_CALL = r"check\(\s*[\"']{}[\"']"


def verdicts(run, table):
    """Return the :class:`Row` list of one run: one row per exercise of its notebook."""
    sub = run.submission
    exercises = table.get((sub.concept, sub.track), []) if sub.concept else []
    notes = list(run.notes) + review_notes(sub, run)
    claims = stored_claims(sub.data)
    if not exercises:
        reason = run.stopped or f"the course has no checkers for {sub.key}"
        return [_row(sub, run, "", "", "did not run", reason, None, notes)]
    rows = []
    for ex_id, title in exercises:
        status, message, hint = _verdict(run, ex_id)
        claim = claims.get(ex_id)
        extra = []
        if claim and claim != status:
            extra.append(f"its saved outputs claimed {claim!r}: ignored, the fresh run decides")
        rows.append(_row(sub, run, ex_id, title, status, message, hint, notes + extra))
    return rows


def _row(sub, run, ex_id, title, status, message, hint, notes):
    return Row(
        student=sub.student,
        concept=sub.concept or "",
        track=sub.track or "",
        exercise=ex_id,
        title=title,
        status=status,
        message=message,
        hint=hint or "",
        notebook=sub.rel,
        seconds=round(run.seconds, 1),
        notes="; ".join(dict.fromkeys(notes)),
    )


def _verdict(run, ex_id):
    """Return (status, message, hint) for one exercise of a run."""
    if run.void:
        return "error", run.void, None
    signed = [c for c in run.checks if c.get("exercise") == ex_id]
    if signed:
        last = signed[-1]
        status = last.get("status")
        if status not in STATUSES[:4]:
            return "error", f"unexpected status {status!r} from the checker", None
        return status, str(last.get("message") or ""), last.get("hint")
    nb = run.executed
    if nb is None:
        return "did not run", run.stopped or "it was not executed", None
    calls = [
        (i, c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and re.search(CHECK_CALL.format(re.escape(ex_id)), c.source)
    ]
    if not calls:
        reason = f'the notebook has no cu.check("{ex_id}", ...) cell'
        return "did not run", reason + (f"; {run.stopped}" if run.stopped else ""), None
    index, cell = calls[-1]
    if run.stopped_at is not None and index == run.stopped_at:
        # the answer itself was running: it hung, crashed or went over a limit
        return "error", f"{run.stopped}, in this check cell", None
    if run.stopped_at is not None and index > run.stopped_at:
        return "did not run", f"{run.stopped}, before its check cell", None
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        err = errors[0]
        return "error", f"the check cell raised {err.get('ename')}: {err.get('evalue')}", None
    if cell.execution_count is None and run.stopped:
        return "did not run", run.stopped, None
    shown = [o for o in cell.get("outputs", []) if checks.MIME in o.get("data", {})]
    reason = "the check cell ran, but the course's checker never gave a verdict"
    if shown:
        reason += " (the check result it displayed did not come from the checker: ignored)"
    return "did not run", reason, None


def stored_claims(data):
    """Return ``{exercise: status}`` that a submitted notebook's saved outputs show."""
    try:
        nb = json.loads(data.decode("utf-8"))
        import nbformat

        return {c["exercise"]: c["status"] for c in checks.read_checks(nbformat.from_dict(nb))}
    except Exception:  # malformed: nothing is claimed
        return {}


def review_notes(sub, run):
    """Return notes about a run that a person may want to look at."""
    notes = []
    try:
        nb = json.loads(sub.data.decode("utf-8"))
        code = "\n".join(
            "".join(c.get("source", ""))
            for c in nb.get("cells", [])
            if c.get("cell_type") == "code"
        )
    except Exception:
        code = ""
    mentioned = [w for w in REVIEW_WORDS if w in code]
    if mentioned:
        notes.append(f"its code mentions {', '.join(mentioned)}: worth reading")
    if run.executed is not None:
        signed = Counter((c.get("exercise"), c.get("status")) for c in run.checks)
        fake = 0
        for cell in run.executed.cells:
            for out in cell.get("outputs", []):
                shown = out.get("data", {}).get(checks.MIME)
                if isinstance(shown, dict):
                    pair = (shown.get("exercise"), shown.get("status"))
                    if signed[pair] > 0:
                        signed[pair] -= 1
                    else:
                        fake += 1
        if fake:
            notes.append(
                f"it displayed {fake} check result(s) that did not come from the course's "
                "checker (ignored)"
            )
    if sub.found_by == "name":
        notes.append("exercise told from the file name (no course metadata in the notebook)")
    return notes


def progress_line(run, table):
    sub = run.submission
    statuses = Counter(r.status for r in verdicts(run, table))
    told = ", ".join(f"{n} {s}" for s, n in statuses.items())
    flag = " [see notes]" if run.notes else ""
    return f"{run.seconds:6.1f} s  {sub.student:<16} {sub.key:<24} {told}{flag}"

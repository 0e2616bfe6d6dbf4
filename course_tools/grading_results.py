"""Reading what a graded kernel wrote: :func:`read_results` believes only the lines of its
results file signed with the run's key (:func:`course_tools.grading_kernel.sign`) and turns
them into checks, notes and a suspicion level; :func:`relabel` makes the paths in those notes
readable.
"""

import json
import secrets
from pathlib import Path

from .grading_kernel import sign


def read_results(path, key, labels=()):
    """Return what a kernel signed in its results file: ``{ready, checks, notes, suspect}``.

    Lines whose signature does not match ``key`` are not believed; they are counted in a note.
    ``labels`` (prefix, label) pairs make the paths in notes readable.
    """
    found = {"ready": False, "checks": [], "notes": [], "suspect": 0}
    forged = 0
    lines = Path(path).read_text(encoding="utf-8").splitlines() if Path(path).exists() else []
    for line in lines:
        try:
            record = json.loads(line)
            body, sig = record["body"], record["sig"]
            genuine = isinstance(body, str) and secrets.compare_digest(sign(key, body), str(sig))
            payload = json.loads(body) if genuine else None
        except (ValueError, KeyError, TypeError):
            genuine, payload = False, None
        if not genuine or not isinstance(payload, dict):
            forged += 1
            continue
        kind = payload.get("kind")
        if kind == "ready":
            found["ready"] = True
        elif kind == "check":
            found["checks"].append(payload)
        elif kind in ("blocked", "command"):
            found["suspect"] = max(found["suspect"], 2 if kind == "blocked" else 1)
            word = "refused" if kind == "blocked" else "ran the command"
            found["notes"].append(f"{word}: {relabel(str(payload.get('detail', '')), labels)}")
    if forged:
        found["notes"].append(f"{forged} unsigned line(s) in its results file were ignored")
    return found


def relabel(text, labels):
    """Replace scratch and folder paths in ``text`` by readable labels."""
    for prefix, label in labels:
        text = text.replace(prefix, label)
    return text

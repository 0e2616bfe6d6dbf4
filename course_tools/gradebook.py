"""Write what ``course grade`` found: grades.csv, summary.csv, grades.json and grades.html.

- ``grades.csv``: one row per exercise per submitted notebook (student, concept, track,
  exercise, status, the checker's message and hint, the notebook, seconds, notes);
- ``summary.csv``: one row per exercise: how many students submitted it, how many solved it,
  and how many rows had each status;
- ``grades.html``: a page with the students x exercises table, the summary and every message;
- ``grades.json``: all of the above for scripts.
"""

import csv
import html
import json
import time
from dataclasses import asdict, fields
from pathlib import Path

from .grading_records import STATUSES, Row

COLOURS = {
    "passed": "#d9f2d9",
    "wrong": "#f9d6d5",
    "error": "#fbe3c4",
    "not solved": "#ececec",
    "did not run": "#e0e0f5",
}
RANK = {s: i for i, s in enumerate(STATUSES)}  # a student's best status, passed first


def summary(rows):
    """Return one dict per exercise: students, solved (students who passed) and status counts."""
    table = {}
    for row in rows:
        if not row.exercise:
            continue
        entry = table.setdefault(
            row.exercise,
            {"exercise": row.exercise, "title": row.title, "students": set(), "solved": set()}
            | {s: 0 for s in STATUSES},
        )
        entry["students"].add(row.student)
        entry[row.status] += 1
        if row.status == "passed":
            entry["solved"].add(row.student)
    # the course's order: concept, track, then the exercises as the notebook asks them
    first = list(table)
    return [
        {**e, "students": len(e["students"]), "solved": len(e["solved"])}
        for e in sorted(
            table.values(),
            key=lambda e: (*e["exercise"].split(".")[:2], first.index(e["exercise"])),
        )
    ]


def best(rows):
    """Return ``{(student, exercise): row}`` keeping each student's best result per exercise."""
    chosen = {}
    for row in rows:
        key = (row.student, row.exercise)
        if key not in chosen or RANK[row.status] < RANK[chosen[key].status]:
            chosen[key] = row
    return chosen


def write(rows, runs, out, *, timeout, folder):
    """Write the four files under ``out``; return their paths."""
    from course_utils.doctor import machine

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(Row)]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    totals = summary(rows)
    columns = ["exercise", "title", "students", "solved", *STATUSES]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: e[k] for k in columns} for e in totals)
    meta = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "submissions": str(folder),
        "timeout_s": timeout,
        "notebooks": [
            {
                "notebook": r.submission.rel,
                "student": r.submission.student,
                "exercise_notebook": r.submission.key,
                "seconds": round(r.seconds, 1),
                "stopped": r.stopped,
                "notes": r.notes,
                "executed": str(r.output) if r.output else None,
            }
            for r in runs
        ],
    }
    (out / "grades.json").write_text(
        json.dumps({**meta, "rows": [asdict(r) for r in rows], "summary": totals}, indent=1) + "\n",
        encoding="utf-8",
    )
    (out / "grades.html").write_text(page(rows, totals, meta), encoding="utf-8")
    return [out / n for n in ("grades.csv", "summary.csv", "grades.html", "grades.json")]


def _e(value):
    return html.escape(str(value), quote=True)


def _status_cell(row):
    tip = row.message + (f"\nHint: {row.hint}" if row.hint else "")
    return f'<td style="background:{COLOURS[row.status]}" title="{_e(tip)}">{_e(row.status)}</td>'


def page(rows, totals, meta):
    """Return the HTML page: students x exercises, the summary per exercise, every message."""
    exercises = [e["exercise"] for e in totals]
    students = sorted({r.student for r in rows}, key=str.lower)
    chosen = best(rows)
    head = "".join(f'<th title="{_e(e["title"])}">{_e(e["exercise"])}</th>' for e in totals)
    grid = []
    for student in students:
        cells = "".join(
            _status_cell(chosen[(student, x)]) if (student, x) in chosen else "<td>-</td>"
            for x in exercises
        )
        solved = sum(
            1
            for x in exercises
            if (student, x) in chosen and chosen[(student, x)].status == "passed"
        )
        grid.append(f"<tr><th>{_e(student)}</th><td>{solved}/{len(exercises)}</td>{cells}</tr>")
    sums = "".join(
        f"<tr><td>{_e(e['exercise'])}</td><td>{_e(e['title'])}</td><td>{e['solved']} of "
        f"{e['students']}</td>" + "".join(f"<td>{e[s]}</td>" for s in STATUSES) + "</tr>"
        for e in totals
    )
    details = "".join(
        f"<tr><td>{_e(r.student)}</td><td>{_e(r.exercise)}</td>{_status_cell(r)}"
        f"<td><pre>{_e(r.message)}</pre>{'<i>Hint:</i> ' + _e(r.hint) if r.hint else ''}</td>"
        f"<td>{_e(r.notebook)}</td><td>{r.seconds}</td><td>{_e(r.notes)}</td></tr>"
        for r in sorted(rows, key=lambda r: (r.student.lower(), r.exercise, r.notebook))
    )
    unmatched = [r for r in rows if not r.exercise]
    loose = "".join(
        f"<li>{_e(r.notebook)} ({_e(r.student)}): {_e(r.message)}</li>" for r in unmatched
    )
    legend = " ".join(
        f'<span style="background:{COLOURS[s]};padding:1px 6px">{_e(s)}</span>' for s in STATUSES
    )
    return f"""<!doctype html><meta charset="utf-8"><title>Exercise grades</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}pre{{margin:0;white-space:pre-wrap;font-size:90%}}</style>
<h1>Exercise grades</h1>
<p>{_e(meta["created"])} &middot; {_e(meta["machine"])} &middot; limit {meta["timeout_s"]} s per notebook &middot; {len(meta["notebooks"])} notebook(s) from {_e(meta["submissions"])}</p>
<p>Every notebook was executed afresh; a status is the course checker's verdict in that run (hover for its message). {legend}</p>
<h2>Students</h2><table><tr><th>student</th><th>solved</th>{head}</tr>{"".join(grid)}</table>
<h2>Per exercise</h2><table><tr><th>exercise</th><th>title</th><th>solved</th>{"".join(f"<th>{_e(s)}</th>" for s in STATUSES)}</tr>{sums}</table>
{f"<h2>Notebooks that are not a course exercise</h2><ul>{loose}</ul>" if loose else ""}
<h2>Every result</h2><table><tr><th>student</th><th>exercise</th><th>status</th><th>message</th><th>notebook</th><th>s</th><th>notes</th></tr>{details}</table>
"""


def text_summary(rows):
    """Return the per-exercise summary as plain text lines (for the terminal)."""
    totals = summary(rows)
    width = max([len(e["exercise"]) for e in totals] + [8])
    lines = [f"{'exercise':<{width}}  solved  " + "  ".join(f"{s:>11}" for s in STATUSES)]
    for e in totals:
        lines.append(
            f"{e['exercise']:<{width}}  {e['solved']:>2}/{e['students']:<3}  "
            + "  ".join(f"{e[s]:>11}" for s in STATUSES)
        )
    return lines

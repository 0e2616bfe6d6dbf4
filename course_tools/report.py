"""The run report: per-notebook status and time, and the two tracks' figures side by side."""

import base64
import html
import json
import time
from collections import defaultdict
from pathlib import Path

from course_utils import claims, targets
from course_utils.doctor import (
    machine,  # noqa: F401  (report.machine(), kept for the command line)
)
from course_utils.plots import png
from course_utils.records import TRACKS


def side_by_side(outcomes):
    """Return rows ``{concept, name, unit, pytorch, tensorflow}`` from the notebooks' records."""
    table = defaultdict(dict)
    for outcome in outcomes:
        for rec in outcome.records:
            key = (rec["concept"], rec["name"])
            table[key]["unit"] = rec.get("unit") or table[key].get("unit")
            table[key][rec["track"]] = rec["value"]
    return [
        {"concept": c, "name": n, "unit": v.get("unit"), **{t: v.get(t) for t in TRACKS}}
        for (c, n), v in sorted(table.items())
    ]


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return f"[{len(value)} values]" if len(value) > 4 else json.dumps(value)
    if isinstance(value, dict):
        return f"{{{len(value)} entries}}"
    return "" if value is None else str(value)


def _time_plot(outcomes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_concept = defaultdict(dict)
    for o in outcomes:
        by_concept[f"{o.entry.set}/{o.entry.concept}"][o.entry.track] = o.seconds
    names = list(by_concept)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(names)))
    for offset, track in ((-0.2, "pytorch"), (0.2, "tensorflow")):
        ax.barh(
            [i + offset for i in range(len(names))],
            [by_concept[n].get(track, 0) for n in names],
            height=0.4,
            label=track,
        )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("execution time (s)")
    ax.legend()
    return png(fig)


CHARTS = (  # (file stem, title, which rows, log scale)
    ("speedups", "Speedups (x, higher is faster)", lambda r: "speedup" in r["name"], False),
    ("timings", "Timings (s, log scale)", lambda r: r["unit"] == "s", True),
    ("memory", "Memory (MiB)", lambda r: r["unit"] == "MiB", False),
    ("sizes", "Artifact sizes (bytes)", lambda r: r["unit"] in ("bytes", "KiB"), False),
)


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def paired(rows, select):
    """Return the rows chosen by ``select`` that have a number in both tracks."""
    return [r for r in rows if select(r) and all(_number(r[t]) for t in TRACKS)]


def _pair_plot(rows, title, log):
    """Return a PNG of horizontal bars, PyTorch beside TensorFlow for each figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['concept']}: {r['name']}" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.42 * len(rows)))
    for offset, track in ((-0.2, "pytorch"), (0.2, "tensorflow")):
        ax.barh(
            [i + offset for i in range(len(rows))],
            [r[track] for r in rows],
            height=0.4,
            label=track,
        )
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.legend()
    return png(fig)


def charts(rows, out):
    """Write one PNG per chart that has data; return ``[(stem, title, png bytes)]``."""
    made = []
    for stem, title, select, log in CHARTS:
        chosen = paired(rows, select)
        if chosen:
            png = _pair_plot(chosen, title, log)
            (Path(out) / f"{stem}.png").write_bytes(png)
            made.append((stem, title, png))
    return made


def deployment_targets(rows):
    """Return ``(pytorch, tensorflow)``: both tracks' ``deployment_targets`` records, or None."""
    found = [r for r in rows if r["name"] == "deployment_targets"]
    return (found[0]["pytorch"], found[0]["tensorflow"]) if found else None


def write(outcomes, out, *, quick=True):
    """Write report.md, report.html, records.json and summary.json under ``out``; return paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = side_by_side(outcomes)
    summary = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "mode": "quick" if quick else "full",
        "notebooks": [
            {
                "notebook": o.entry.key,
                "ok": o.ok,
                "seconds": round(o.seconds, 1),
                # course run: time spent waiting while another notebook's timed cell ran alone
                "waited": round(o.waited, 1),
                "error": o.error,
                "output": str(o.output),
            }
            for o in outcomes
        ],
        "failed": sum(not o.ok for o in outcomes),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "records.json").write_text(
        json.dumps([r for o in outcomes for r in o.records], indent=1) + "\n"
    )
    png = _time_plot(outcomes) if outcomes else b""
    (out / "times.png").write_bytes(png)

    claims_md, claims_html = claims.report_section(outcomes, out)  # the verdicts go first
    md = [
        "# Course run report",
        "",
        *claims_md,
        f"- created: {summary['created']}",
        f"- machine: {summary['machine']}",
        f"- mode: {summary['mode']}",
        f"- notebooks: {len(outcomes)}, failed: {summary['failed']}",
        "",
        "## Notebooks",
        "",
        "| notebook | status | time (s) |",
        "|---|---|---|",
    ]
    md += [
        f"| {n['notebook']} | {'ok' if n['ok'] else 'FAILED'} | {n['seconds']} |"
        for n in summary["notebooks"]
    ]
    failures = [n for n in summary["notebooks"] if not n["ok"]]
    if failures:
        md += ["", "## Failures", ""] + [f"- {n['error']}" for n in failures]
    made = charts(rows, out)
    md += ["", "![execution time per notebook](times.png)", ""]
    joined = deployment_targets(rows)  # claim C10: one table from both tracks' columns
    md += targets.markdown(*joined) + [""] if joined else []
    md += ["## Figures, side by side", ""]
    md += [f"![{title}]({stem}.png)" for stem, title, _ in made] + [""]
    md += ["| concept | figure | unit | PyTorch | TensorFlow |", "|---|---|---|---|---|"]
    md += [
        f"| {r['concept']} | {r['name']} | {r['unit'] or ''} | {_fmt(r['pytorch'])} | {_fmt(r['tensorflow'])} |"
        for r in rows
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")

    image = base64.b64encode(png).decode()
    cells = "".join(
        f"<tr><td>{html.escape(r['concept'])}</td><td>{html.escape(r['name'])}</td>"
        f"<td>{html.escape(r['unit'] or '')}</td><td>{html.escape(_fmt(r['pytorch']))}</td>"
        f"<td>{html.escape(_fmt(r['tensorflow']))}</td></tr>"
        for r in rows
    )
    status = "".join(
        f"<tr><td>{html.escape(n['notebook'])}</td><td>{'ok' if n['ok'] else '<b>FAILED</b>'}</td>"
        f"<td>{n['seconds']}</td><td>{html.escape(n['error'] or '')}</td></tr>"
        for n in summary["notebooks"]
    )
    figures = "".join(
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for _, title, png in made
    )
    page = f"""<!doctype html><meta charset="utf-8"><title>Course run report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}</style>
<h1>Course run report</h1>{claims_html}<p>{html.escape(summary["created"])} &middot; {html.escape(summary["machine"])} &middot; {summary["mode"]} mode</p>
<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>time (s)</th><th>error</th></tr>{status}</table>
<img alt="execution time per notebook" src="data:image/png;base64,{image}">
{targets.html_table(*joined) if joined else ""}<h2>Figures, side by side</h2>{figures}<table><tr><th>concept</th><th>figure</th><th>unit</th><th>PyTorch</th><th>TensorFlow</th></tr>{cells}</table>
"""
    (out / "report.html").write_text(page)
    return [out / "report.md", out / "report.html", out / "records.json", out / "summary.json"]

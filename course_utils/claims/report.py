"""The claims lab in the course's run report: :func:`as_record` is what a notebook records as
``claims``, and :func:`report_section` reads those records back and writes the claims table and
plots of the run report (Markdown and HTML).
"""

from pathlib import Path

from .catalogue import CLAIMS, FRAMEWORKS, NAMES, NOT_MEASURABLE, NOT_MEASURED
from .charts import PLOTTED, plot
from .tables import setup_line


def as_record(verdicts, data, machine, setup):
    """Return the plain dict a notebook records as ``claims``: the verdicts, the plot numbers,
    the machine line and each framework's setup (versions, threads, device)."""
    return {
        "machine": machine,
        "setup": setup,
        "verdicts": [v.as_dict() for v in verdicts],
        "plots": data,
    }


# ---------------------------------------------------------------- the run report


def _rows_from(records):
    """Return ``{track: claims record}`` for the lessons' ``claims`` records among ``records``."""
    return {
        r["track"]: r["value"]
        for r in records
        if r.get("concept") == "09_claims_lab" and r.get("name") == "claims"
    }


def report_section(outcomes, out):
    """Return ``(markdown lines, html)`` of the claims table for the run report, and write one
    PNG per quantitative claim under ``out``; ``([], "")`` when no claims lab ran."""
    import base64
    import html

    from ..plots import png

    lessons = [o for o in outcomes if o.entry.set == "notebooks"]
    found = _rows_from([r for o in lessons for r in o.records])
    if not found:
        return [], ""
    track = "pytorch" if "pytorch" in found else "tensorflow"
    main, other = found[track], found.get("tensorflow" if track == "pytorch" else "pytorch")
    others = {v["claim"]: v["outcome"] for v in (other or {}).get("verdicts", [])}
    rows = []
    for v in main["verdicts"]:
        verdict = v["outcome"]
        if v.get("missing") and verdict not in (NOT_MEASURABLE, NOT_MEASURED):
            verdict += f", partly measured (not measured here: {v['missing']})"
        if v["claim"] in others and others[v["claim"]] != verdict:
            verdict += f" (the {NAMES['tensorflow' if track == 'pytorch' else 'pytorch']} notebook's run: {others[v['claim']]})"
        rows.append(
            (
                v["claim"],
                CLAIMS[v["claim"]].title,
                verdict,
                v["figures"].get("pytorch", ""),
                v["figures"].get("tensorflow", ""),
                v["reason"],
            )
        )
    md = [
        "## Claims: verdicts on this machine",
        "",
        f"Measured by the {NAMES[track]} lesson of 09_claims_lab in this run, both frameworks "
        "in fresh processes with the same model, data, batch, dtype and threads.",
        "",
        f"- machine: {main['machine']}",
    ]
    md += [f"- {setup_line(fw, main['setup'][fw])}" for fw in FRAMEWORKS if fw in main["setup"]]
    md += ["", "| claim | verdict | PyTorch | TensorFlow | why |", "|---|---|---|---|---|"]
    md += [f"| {c} {t} | **{v}** | {p} | {f} | {r} |" for c, t, v, p, f, r in rows]
    images = []
    for claim in PLOTTED:
        if claim in main["plots"]:
            image = png(plot(claim, main["plots"]))
            (Path(out) / f"claims_{claim}.png").write_bytes(image)
            images.append((claim, image))
    md += [""] + [f"![{c}: {CLAIMS[c].title}](claims_{c}.png)" for c, _ in images]
    md += ["", "## This run", ""]
    esc = html.escape
    body = "".join(
        f"<tr><td>{esc(c)} {esc(t)}</td><td><b>{esc(v)}</b></td><td>{esc(p)}</td><td>{esc(f)}</td><td>{esc(r)}</td></tr>"
        for c, t, v, p, f, r in rows
    )
    pics = "".join(
        f'<img alt="{esc(c)}" src="data:image/png;base64,{base64.b64encode(image).decode()}">'
        for c, image in images
    )
    lines = [esc(main["machine"])] + [
        esc(setup_line(fw, main["setup"][fw])) for fw in FRAMEWORKS if fw in main["setup"]
    ]
    page = (
        f"<h2>Claims: verdicts on this machine</h2><p>{'<br>'.join(lines)}</p>"
        f"<table><tr><th>claim</th><th>verdict</th><th>PyTorch</th><th>TensorFlow</th><th>why</th></tr>{body}</table>{pics}"
    )
    return md, page

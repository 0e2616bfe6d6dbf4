"""Deployment targets: which ones a notebook reached, with what, and the evidence (claim C10).

Each twin of 06_deployment fills the same list of :data:`TARGETS` from what it just ran:

    rows = [targets.reached("ONNX", "digits.onnx in ONNX Runtime", onnx_diff, 1e-5), ...]
    record("deployment_targets", targets.as_record(rows))

A row says whether the target was reached, the artifact and runtime, and the evidence: the
largest difference from the original model against a threshold (for a reached target), or the
reason it was not (for a failed or untried one). Nothing in a row is typed by hand: the
notebook computes it. :func:`join` puts the two tracks' columns side by side (the course report
uses it) and :func:`c10` turns them into a verdict on claim C10.
"""

TARGETS = (
    "own format, reloaded in Python",
    "C++-loadable artifact",
    "ONNX",
    "mobile/edge runtime",
    "quantized int8",
    "browser",
    "HTTP server",
)
REACHED, FAILED, NOT_TRIED = "reached", "failed", "not tried"


def _target(name):
    if name not in TARGETS:
        raise ValueError(f"unknown deployment target {name!r}; the targets are {list(TARGETS)}")
    return name


def reached(target, artifact, max_abs_diff, threshold, note=None):
    """Return a row for a target reached by ``artifact`` (a short description).

    The evidence is the verdict ``max |diff| < threshold`` (raises ValueError when the
    difference is not below the threshold: then the target was not reached).
    """
    if not max_abs_diff < threshold:
        raise ValueError(
            f"{artifact}: max |diff| {max_abs_diff:.3g} is not below {threshold:g}; "
            "use failed(...) with the reason"
        )
    return {
        "target": _target(target),
        "status": REACHED,
        "artifact": artifact,
        "evidence": f"max |diff| < {threshold:g}",
        "note": note,
    }


def from_row(target, row, *, max_drop=None, note=None):
    """Return a row for ``target`` from a parity-table row (``cu.export.parity_row``).

    Reached when the artifact's max difference is below its threshold and, when ``max_drop``
    is given, its accuracy is at most ``max_drop`` below the original's (the test for quantized
    artifacts, whose outputs differ on purpose). Otherwise failed, saying which test it missed.
    """
    drop_ok = max_drop is None or row["accuracy_change"] >= -max_drop - 1e-12
    evidence = f"max |diff| < {row['threshold']:g}"
    if max_drop is not None:
        evidence += f", accuracy drop <= {max_drop:g}"
    if row["within"] and drop_ok:
        return {
            "target": _target(target),
            "status": REACHED,
            "artifact": row["artifact"],
            "evidence": evidence,
            "note": note,
        }
    return failed(target, row["artifact"], f"did not pass: {evidence}", note)


def failed(target, artifact, reason, note=None):
    """Return a row for a target that was tried and failed; ``reason`` is the measured error."""
    return {
        "target": _target(target),
        "status": FAILED,
        "artifact": artifact,
        "evidence": reason,
        "note": note,
    }


def not_tried(target, reason, note=None):
    """Return a row for a target that could not be tried here (e.g. no browser), and why."""
    return {
        "target": _target(target),
        "status": NOT_TRIED,
        "artifact": None,
        "evidence": reason,
        "note": note,
    }


def check_complete(rows):
    """Raise ValueError unless ``rows`` has exactly one row per target, in :data:`TARGETS` order."""
    names = [row["target"] for row in rows]
    if names != list(TARGETS):
        raise ValueError(f"expected one row per target, in order {list(TARGETS)}; got {names}")
    return rows


def as_record(rows):
    """Return the rows as a plain list for ``record("deployment_targets", ...)`` (no floats)."""
    return [dict(row) for row in check_complete(rows)]


MARK = {REACHED: "yes", FAILED: "FAILED", NOT_TRIED: "not tried"}


def cell(row):
    """Return one table cell for a row: ``"yes: artifact (evidence)"`` or ``"FAILED: reason"``."""
    if row is None:
        return "-"
    text = f"{MARK[row['status']]}: "
    if row["status"] == REACHED:
        text += f"{row['artifact']} ({row['evidence']})"
    else:
        text += (f"{row['artifact']}: " if row.get("artifact") else "") + row["evidence"]
    return text + (f"; {row['note']}" if row.get("note") else "")


def format_table(rows):
    """Return a plain-text table of one track's rows: target, reached, artifact and evidence."""
    width = max(len(t) for t in TARGETS)
    lines = [f"{'target'.ljust(width)}  reached?", f"{'-' * width}  {'-' * 8}"]
    lines += [f"{row['target'].ljust(width)}  {cell(row)}" for row in rows]
    return "\n".join(lines)


def join(pytorch, tensorflow):
    """Return ``[{target, pytorch, tensorflow}]``: the two tracks' rows side by side (None: absent)."""
    by_track = [{row["target"]: row for row in rows or []} for rows in (pytorch, tensorflow)]
    return [
        {"target": t, "pytorch": by_track[0].get(t), "tensorflow": by_track[1].get(t)}
        for t in TARGETS
    ]


def c10(pytorch, tensorflow):
    """Return claim C10's verdict from both tracks' rows (a dict).

    Keys: ``pytorch`` and ``tensorflow`` (how many targets each reached), ``only_pytorch`` and
    ``only_tensorflow`` (targets one reached and the other did not), ``broader`` ("tensorflow",
    "pytorch" or None when neither reached a target the other missed) and ``verdict`` (a
    sentence). The claim says TensorFlow's deployment story is broader: it is supported here
    only when TensorFlow reached a target that PyTorch did not, and not the other way round.
    """
    joined = join(pytorch, tensorflow)

    def ok(row):
        return row is not None and row["status"] == REACHED

    only_pt = [r["target"] for r in joined if ok(r["pytorch"]) and not ok(r["tensorflow"])]
    only_tf = [r["target"] for r in joined if ok(r["tensorflow"]) and not ok(r["pytorch"])]
    counts = {t: sum(ok(r[t]) for r in joined) for t in ("pytorch", "tensorflow")}
    if only_tf and not only_pt:
        broader, verdict = "tensorflow", "supported: TensorFlow reached targets PyTorch did not"
    elif only_pt and not only_tf:
        broader, verdict = "pytorch", "not supported: PyTorch reached targets TensorFlow did not"
    elif only_pt and only_tf:
        broader, verdict = None, "mixed: each framework reached a target the other did not"
    else:
        broader = None
        verdict = (
            f"not supported: both reached the same {counts['pytorch']} of {len(TARGETS)} targets"
        )
    return {
        **counts,
        "only_pytorch": only_pt,
        "only_tensorflow": only_tf,
        "broader": broader,
        "verdict": verdict,
    }


def markdown(pytorch, tensorflow):
    """Return markdown lines: both tracks' targets in one table, then claim C10's verdict."""
    verdict = c10(pytorch, tensorflow)

    def md_cell(row):
        return cell(row).replace("|", "\\|")

    lines = ["## Deployment targets (claim C10)", "", "| target | PyTorch | TensorFlow |"]
    lines += ["|---|---|---|"]
    lines += [
        f"| {r['target']} | {md_cell(r['pytorch'])} | {md_cell(r['tensorflow'])} |"
        for r in join(pytorch, tensorflow)
    ]
    return lines + [
        "",
        f"Claim C10, TensorFlow's deployment story is broader: **{verdict['verdict']}** "
        f"(targets reached: PyTorch {verdict['pytorch']}, TensorFlow {verdict['tensorflow']}, "
        f"of {len(TARGETS)}).",
    ]


def html_table(pytorch, tensorflow):
    """Return the same table and verdict as :func:`markdown`, as an HTML fragment."""
    import html

    body = "".join(
        f"<tr><td>{html.escape(r['target'])}</td><td>{html.escape(cell(r['pytorch']))}</td>"
        f"<td>{html.escape(cell(r['tensorflow']))}</td></tr>"
        for r in join(pytorch, tensorflow)
    )
    verdict = html.escape(c10(pytorch, tensorflow)["verdict"])
    return (
        "<h2>Deployment targets (claim C10)</h2><table><tr><th>target</th><th>PyTorch</th>"
        f"<th>TensorFlow</th></tr>{body}</table><p>Claim C10: <b>{verdict}</b></p>"
    )

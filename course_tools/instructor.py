"""Run the course on the runtime a class will use, and show what it measured there.

The machinery behind ``instructor.ipynb``: describe the machine, choose the device both
frameworks can use, run the chosen notebooks with ``course run`` (in a child process, so the
instructor's kernel stays clean), and show the report inline, with the figures only an
accelerator can produce set apart.
"""

import json
import os
import platform
import sys
from pathlib import Path
from types import SimpleNamespace

from course_utils.doctor import in_colab

from . import report

# Figures the lessons record only when an accelerator is present: (concept, record name) ->
# what it is. On a CPU-only runtime none of them exists, and the table says so.
ACCELERATOR_FIGURES = {
    (
        "03_gpu_offload",
        "crossover_size",
    ): "matrix size from which the accelerator wins, copies included",
    ("03_gpu_offload", "h2d_bandwidth_gbs"): "host-to-device copy bandwidth (GB/s)",
    ("03_gpu_offload", "h2d_pinned_gbs"): "host-to-device bandwidth from pinned memory (GB/s)",
    ("05_training", "train_accelerator_peak"): "accelerator memory peak while training (MiB)",
}
ACCELERATOR_WORDS = ("gpu", "cuda", "tpu", "accelerator", "h2d", "device_")


def cpu_model():
    """Return the CPU's model name (from /proc/cpuinfo on Linux), or what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose_device(doctor_report, requested="auto"):
    """Return ``(device, reason)``: the device to pass to every notebook, and why.

    With ``requested="auto"``: the best accelerator that both PyTorch and TensorFlow can use
    (``"tpu"``, ``"cuda"``, ``"mps"``); if only one framework sees an accelerator, ``"auto"``
    (each notebook then takes its framework's best device); otherwise ``"cpu"``. Anything
    else is passed on as asked.
    """
    if requested != "auto":
        return requested, f"as asked (device = {requested!r})"
    kinds = {
        name: doctor_report.get(name, {}).get("available", ["cpu"])
        for name in ("torch", "tensorflow")
    }
    shared = [k for k in kinds["torch"] if k != "cpu" and k in kinds["tensorflow"]]
    if shared:
        return shared[0], f"both PyTorch and TensorFlow can use {shared[0]!r}"
    alone = {n: [k for k in v if k != "cpu"] for n, v in kinds.items()}
    if any(alone.values()):
        seen = "; ".join(f"{n} sees {', '.join(v)}" for n, v in alone.items() if v)
        return "auto", f"only one framework sees an accelerator ({seen}): each takes its best"
    return "cpu", "no GPU or TPU on this runtime: everything runs on the CPU"


def course_run_command(
    concepts=(), sets=("notebooks",), *, quick=True, device="auto", out, timeout=600
):
    """Return the ``course run`` command line (a list) for these choices.

    ``concepts`` and ``sets`` are lists, or strings of names separated by commas or spaces
    (what ``papermill -p concepts 00_setup,03`` passes).
    """
    command = [sys.executable, "-m", "course_tools", "run", "--no-progress", "--device", device]
    command += ["--out", str(out), "--timeout", str(timeout), "--set", *_names(sets)]
    if _names(concepts):
        command += ["--only", *_names(concepts)]
    return command + ([] if quick else ["--full"])


def run_course(
    root, concepts=(), sets=("notebooks",), *, quick=True, device="auto", out, timeout=600
):
    """Run ``course run`` in a child process, showing its lines as they come; return ``(summary, out)``.

    ``summary`` is the run's ``summary.json`` (one entry per notebook, ``failed``, ``mode``,
    ``machine``); ``out`` the folder holding the report. Bad choices (an unknown concept)
    raise :class:`~course_utils.errors.CourseError` with ``course run``'s message. The kernels'
    own log lines go to ``out/kernels.log``, not into this notebook.
    """
    import subprocess
    import tempfile

    from course_utils.errors import CourseError

    out = Path(out) if Path(out).is_absolute() else Path(root) / out
    command = course_run_command(
        concepts, sets, quick=quick, device=device, out=out, timeout=timeout
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_ROOT", "COURSE_WORKDIR")}
    print(f"$ course {' '.join(command[3:])}", flush=True)
    with tempfile.TemporaryFile("w+") as errors:
        with subprocess.Popen(
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        ) as child:
            for line in child.stdout:
                print(line, end="", flush=True)
        errors.seek(0)
        said = errors.read()
    if child.returncode == 2 or not (out / "summary.json").is_file():
        raise CourseError(said.strip().splitlines()[-1] if said.strip() else "course run failed")
    (out / "kernels.log").write_text(said)
    return load(out)[0], out


def _names(value):
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return [str(v) for v in value]


def load(out):
    """Return ``(summary, records)`` that a run wrote under ``out``."""
    out = Path(out)
    summary = json.loads((out / "summary.json").read_text())
    records = json.loads((out / "records.json").read_text())
    return summary, records


def accelerator_rows(records):
    """Return ``[(concept, name, what, PyTorch value, TensorFlow value)]`` of accelerator figures.

    Every figure in :data:`ACCELERATOR_FIGURES` is listed, with ``None`` where it was not
    measured; other records whose names mention an accelerator are added when present.
    """
    values = {}
    for rec in records:
        values.setdefault((rec["concept"], rec["name"]), {})[rec["track"]] = rec["value"]
    rows = {key: what for key, what in ACCELERATOR_FIGURES.items()}
    for key in values:
        name = key[1].lower()
        if (
            key not in rows
            and any(w in name for w in ACCELERATOR_WORDS)
            and not name.endswith("_present")
        ):
            rows[key] = ""
    return [
        (
            c,
            n,
            what,
            values.get((c, n), {}).get("pytorch"),
            values.get((c, n), {}).get("tensorflow"),
        )
        for (c, n), what in sorted(rows.items())
    ]


def honesty(device, doctor_report):
    """Return a paragraph saying which accelerator paths this run exercised, and which not."""
    torch_kinds = doctor_report.get("torch", {}).get("available", ["cpu"])
    tf_kinds = doctor_report.get("tensorflow", {}).get("available", ["cpu"])
    found = sorted({k for k in torch_kinds + tf_kinds if k != "cpu"})
    if not found:
        return (
            "This runtime has no GPU or TPU, so the lessons took their CPU paths: where a "
            "figure needs an accelerator they said so and recorded nothing. The course's CI "
            "runs only this way. Run this notebook on a GPU or TPU runtime (Colab: Runtime -> "
            "Change runtime type) to exercise and measure the accelerator paths."
        )
    return (
        f"This runtime has {', '.join(found)} (PyTorch sees {', '.join(torch_kinds)}; TensorFlow "
        f"sees {', '.join(tf_kinds)}) and the notebooks ran with device {device!r}. The "
        "accelerator paths measured here are not exercised by the course's CI, which has no "
        "accelerator: read the figures below with that in mind, and report anything that fails."
    )


def _cell(value):
    return "" if value is None else report._fmt(value)


def show_report(out, doctor_report, device):
    """Display the run's report inline: statuses, charts, accelerator figures, all figures."""
    from IPython.display import Image, Markdown, display

    summary, records = load(out)
    lines = [
        f"**{len(summary['notebooks'])} notebook(s), {summary['failed']} failed**, "
        f"{summary['mode']} mode, on {summary['machine']}",
        "",
        "| notebook | status | time (s) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {n['notebook']} | {'ok' if n['ok'] else '**FAILED**'} | {n['seconds']} |"
        for n in summary["notebooks"]
    ]
    failures = [n for n in summary["notebooks"] if not n["ok"]]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {n['error']}" for n in failures]
    display(Markdown("\n".join(lines)))
    for png in ["times.png"] + [f"{stem}.png" for stem, *_ in report.CHARTS]:
        if (Path(out) / png).is_file() and (Path(out) / png).stat().st_size:
            display(Image(filename=str(Path(out) / png)))
    rows = accelerator_rows(records)
    ran = {n["notebook"].split("/")[1] for n in summary["notebooks"]}
    measured = [r for r in rows if r[3] is not None or r[4] is not None]
    possible = [r for r in rows if r[0] in ran]
    acc = [
        "### Figures only an accelerator can give",
        "",
        honesty(device, doctor_report),
        "",
        "| concept | figure | what | PyTorch | TensorFlow |",
        "|---|---|---|---|---|",
    ]
    for c, n, what, pt, tf in rows:
        absent = "not measured" if c in ran else "not in this run"
        acc.append(f"| {c} | {n} | {what} | {_cell(pt) or absent} | {_cell(tf) or absent} |")
    acc.append("")
    if possible:
        acc.append(
            f"{len(measured)} of the {len(possible)} accelerator figure(s) of the concepts run "
            "were measured on this runtime."
        )
    else:
        acc.append("None of the concepts run records an accelerator figure.")
    display(Markdown("\n".join(acc)))
    table = [
        "### Every figure, side by side",
        "",
        "| concept | figure | unit | PyTorch | TensorFlow |",
    ]
    table.append("|---|---|---|---|---|")
    table += [
        f"| {r['concept']} | {r['name']} | {r['unit'] or ''} | {_cell(r['pytorch'])} | {_cell(r['tensorflow'])} |"
        for r in report.side_by_side([SimpleNamespace(records=records)])
    ]
    display(Markdown("\n".join(table)))


def environment_line():
    """Return one line: the CPU model, its logical cores, Python, and whether this is Colab."""
    colab = "Colab" if in_colab() else "not Colab"
    return (
        f"{cpu_model()} | {os.cpu_count()} logical cores | Python {platform.python_version()} | "
        f"{colab}"
    )

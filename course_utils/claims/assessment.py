"""The whole table of one run: :func:`assess` decides every claim from the harness's results,
with C10 and C12 decided from the records that the deployment (06) and distributed (07) lessons
store (:func:`upstream` reads them, :func:`upstream_verdict` decides), and C13 from a count of a
model hub's models (:func:`fetch_hub_sample`, online, only when asked); :func:`cpu_rows` gives
C9's operation table on the CPU.
"""

import json
import os
from pathlib import Path

from .catalogue import DEFAULT_MODE, FRAMEWORKS, UPSTREAM
from .rules import machine_busy
from .verdicts import (
    C4_MODELS,
    c1_define_by_run,
    c2_debugging,
    c3_small_models,
    c4_large_models,
    c5_training_memory,
    c6_graph_memory,
    c7_accuracy,
    c8_gpu_code,
    c9_speed,
    c10_deployment,
    c11_torchscript,
    c12_distributed,
    c13_hub,
)

# ---------------------------------------------------------------- C10 and C12: other lessons


def _run_folder():
    """Return the folder of the course run executing this notebook (the runner sets
    COURSE_WORKDIR to ``<run>/work``), or None outside a run."""
    work = os.environ.get("COURSE_WORKDIR")
    return Path(work).parent if work else None


def upstream(claim, root=None):
    """Return the figures ``claim`` ("C10" or "C12") takes from another lesson's records::

        {"source": what was read (a sentence), "pytorch": {name: value} | None,
         "tensorflow": {name: value} | None}

    Read from the executed copies of that lesson in the course run executing this notebook
    (``course run`` writes them under its output folder) when present, else from the committed
    notebooks' stored records. A track whose notebook or records are missing gives None.
    """
    from ..paths import find_root
    from ..records import read_records

    spec = UPSTREAM[claim]
    concept, names = spec["concept"], set(spec["records"].values())
    root = Path(root) if root else find_root()
    places = []
    run = _run_folder()
    if run is not None:
        places.append(("the executed copies of this course run", run / "notebooks" / concept))
    if root is not None:
        places.append(("the committed notebooks' stored records", root / "notebooks" / concept))
    for label, folder in places:
        found = {}
        for track in FRAMEWORKS:
            path = folder / f"{track}.ipynb"
            if not path.is_file():
                found[track] = None
                continue
            recs = {r["name"]: r["value"] for r in read_records(path) if r["name"] in names}
            found[track] = recs or None
        if any(v is not None for v in found.values()):
            where = (
                folder.relative_to(root).as_posix()
                if root and folder.is_relative_to(root)
                else str(folder)
            )
            return {"source": f"{label} ({where}/)", **found}
    return {
        "source": f"none: no {concept} notebook has recorded {sorted(names)} yet",
        "pytorch": None,
        "tensorflow": None,
    }


def upstream_verdict(claim, figures, scripts=None):
    """Return the verdict of C10 or C12 from :func:`upstream`'s figures (C12 also needs the
    counted ``scripts``, ``{framework: distributed_scripts()}``)."""
    if claim == "C10":
        key = UPSTREAM["C10"]["records"]["targets"]
        rows = [(figures[fw] or {}).get(key) for fw in FRAMEWORKS]
        return c10_deployment(*rows)
    return c12_distributed(figures["pytorch"], figures["tensorflow"], scripts)


# ---------------------------------------------------------------- the whole table


def assess(results, upstream_figures=None, hub=None):
    """Return every claim's :class:`Verdict`, in order, from the harness's ``results``
    (``{"pytorch": result, "tensorflow": result}``), the C10/C12 figures (``{"C10": ...,
    "C12": ...}`` from :func:`upstream`) and the optional hub count for C13."""
    pt, tf = results["pytorch"], results["tensorflow"]
    upstream_figures = upstream_figures or {}
    accel = pt["setup"].get("accelerator")
    busy = machine_busy(results)
    pt_cpu = {**pt["ops"]["cpu"], "training step": pt["timing"]["large"][DEFAULT_MODE["pytorch"]]}
    tf_cpu = {
        **tf["ops"]["cpu"],
        "training step": tf["timing"]["large"][DEFAULT_MODE["tensorflow"]],
    }
    if accel:  # the training steps ran on the accelerator: not a CPU row
        pt_cpu.pop("training step"), tf_cpu.pop("training step")
    verdicts = [
        c1_define_by_run(pt["demos"]["c1"], tf["demos"]["c1"]),
        c2_debugging(pt["demos"]["c2"], tf["demos"]["c2"]),
        c3_small_models(pt["timing"]["small"], tf["timing"]["small"], busy=busy),
        c4_large_models(c4_timings(pt), c4_timings(tf), accel, busy=busy),
        c5_training_memory(
            pt["memory"][DEFAULT_MODE["pytorch"]], tf["memory"][DEFAULT_MODE["tensorflow"]]
        ),
        c6_graph_memory(pt["memory"], tf["memory"]),
        c7_accuracy(pt["accuracy"], tf["accuracy"]),
        c8_gpu_code(pt["demos"]["c8"], tf["demos"]["c8"]),
        c9_speed(pt_cpu, tf_cpu, pt["ops"].get("gpu"), tf["ops"].get("gpu"), busy=busy),
    ]
    for claim in ("C10",):
        verdicts.append(upstream_verdict(claim, upstream_figures.get(claim) or _nothing()))
    verdicts.append(c11_torchscript(pt["demos"]["c11"], tf["demos"]["c11"]))
    scripts = {fw: r["demos"].get("c12") for fw, r in (("pytorch", pt), ("tensorflow", tf))}
    verdicts.append(upstream_verdict("C12", upstream_figures.get("C12") or _nothing(), scripts))
    verdicts.append(c13_hub(hub))
    return verdicts


def c4_timings(result):
    """Return ``{model: {mode: TIMING}}`` of the models C4 uses (:data:`C4_MODELS`) in one
    framework's result."""
    return {m: result["timing"][m] for m in C4_MODELS if m in result["timing"]}


def cpu_rows(results):
    """Return ``(pytorch rows, tensorflow rows)``: C9's operation table on the CPU, plus the large
    model's training step in each framework's default mode (left out when the steps ran on an
    accelerator)."""
    rows = []
    for fw in FRAMEWORKS:
        r = results[fw]
        found = dict(r["ops"]["cpu"])
        if not r["setup"].get("accelerator"):
            found["training step"] = r["timing"]["large"][DEFAULT_MODE[fw]]
        rows.append(found)
    return tuple(rows)


def _nothing():
    return {"source": "not read", "pytorch": None, "tensorflow": None}


# ---------------------------------------------------------------- C13: a model hub's count


def hub_counts(models, sample):
    """Count a list of hub model entries (dicts with ``"tags"``) by framework tag: ``"pytorch"``
    and ``"tf"``. Returns the dict :func:`c13_hub` reads; ``sample`` says what was counted."""
    counts = {"pytorch_only": 0, "tensorflow_only": 0, "both": 0, "neither": 0}
    for model in models:
        tags = set(model.get("tags") or ())
        pt, tf = "pytorch" in tags, "tf" in tags
        key = (
            "both"
            if pt and tf
            else "pytorch_only"
            if pt
            else "tensorflow_only"
            if tf
            else "neither"
        )
        counts[key] += 1
    return {**counts, "total": len(models), "sample": sample}


HUB_API = "https://huggingface.co/api/models"


def fetch_hub_sample(limit=1000, timeout=30):
    """Ask the Hugging Face Hub's public API for its ``limit`` most-downloaded models and return
    :func:`hub_counts` of them. Needs the internet; the lab calls it only when asked to."""
    import urllib.request

    url = f"{HUB_API}?sort=downloads&direction=-1&limit={int(limit)}"
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (a fixed https URL)
        models = json.load(answer)
    return hub_counts(models, f"the Hub's {len(models)} most-downloaded models")

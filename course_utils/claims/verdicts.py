"""The verdict of each claim: :class:`Verdict` and one function per claim (``c1_define_by_run``
to ``c13_hub``) that computes an outcome, the reason with the numbers, and short figures per
framework from measured results, applying the rules of :mod:`.catalogue` through
:mod:`.rules`.
"""

import statistics
from dataclasses import asdict, dataclass, field

from .catalogue import (
    C5_QUOTED,
    C7_ROUNDING_IMAGES,
    C13_QUOTED,
    CLAIMS,
    CONTRADICTED,
    DISTRIBUTED_ATOL,
    DISTRIBUTED_MARGIN_LINES,
    FAR_MORE_RATIO,
    FRAMEWORKS,
    GRAPH_MODES,
    INCONCLUSIVE,
    MANY_LINES,
    MIN_HUB_SAMPLE,
    MINIMAL_LINES,
    NAMES,
    NEUTRAL_TARGETS,
    NOT_MEASURABLE,
    NOT_MEASURED,
    OUTCOMES,
    PARTLY,
    RULES,
    RUN_STEPS,
    SUPPORTED,
    UPSTREAM,
)
from .rules import _median, decide_timing, fmt_time, memory_difference, op_comparison, run_totals

# ---------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """A claim's verdict: ``outcome`` (one of :data:`OUTCOMES`), the ``reason`` with the numbers,
    the ``rule`` applied, and short key ``figures`` per framework (text)."""

    claim: str
    outcome: str
    reason: str
    rule: str
    figures: dict = field(default_factory=dict)
    missing: str = ""  # what part of the claim was not measured ("": all of it was)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    def as_dict(self):
        return asdict(self)

    @property
    def label(self):
        """The outcome as the table prints it: ``SUPPORTED``, or ``SUPPORTED, partly measured``
        when part of the claim was not measured."""
        partly = self.missing and self.outcome not in (NOT_MEASURABLE, NOT_MEASURED)
        return self.outcome.upper() + (", partly measured" if partly else "")

    def __str__(self):
        text = f"{self.claim} {CLAIMS[self.claim].title}: {self.label}. {self.reason}"
        if self.missing and self.outcome not in (NOT_MEASURABLE, NOT_MEASURED):
            text += f" Not measured here: {self.missing}."
        return text


def _verdict(claim, outcome, reason, figures=None, missing=None):
    return Verdict(claim, outcome, reason, RULES[claim], figures or {}, missing or "")


def c1_define_by_run(pt, tf):
    """C1 from the two frameworks' ``define_by_run()`` facts (see ``claims_torch``/``claims_tf``).

    ``pt``: {"graph_follows_data", "graph_nodes", "loop_steps", ...};
    ``tf``: {"eager_by_default", "graph_follows_data", "function_traces",
    "function_has_loop_op", "loop_steps", ...}.
    """
    dynamic = bool(pt["graph_follows_data"])
    eager = bool(tf["eager_by_default"] and tf["graph_follows_data"])
    static = tf["function_traces"] == 1 and bool(tf["function_has_loop_op"])
    figures = {
        "pytorch": f"graph nodes {pt['graph_nodes'][0]} vs {pt['graph_nodes'][1]} for two inputs",
        "tensorflow": f"eager {tf['eager_by_default']}; tf.function: {tf['function_traces']} "
        f"trace, loop op {tf['function_has_loop_op']}",
    }
    reason = (
        f"PyTorch's graph followed the data ({dynamic}); TensorFlow ran eagerly by default with "
        f"its operations following the data ({eager}); tf.function still built one static graph "
        f"with the loop inside ({static})."
    )
    if dynamic and eager and static:
        return _verdict("C1", SUPPORTED, reason, figures)
    if not dynamic or not eager:
        return _verdict("C1", CONTRADICTED, reason, figures)
    return _verdict("C1", INCONCLUSIVE, reason, figures)


def c2_debugging(pt, tf):
    """C2 from the two frameworks' ``debugging_inside()`` results: ``{mode: session}`` where a
    session is :func:`debug_session`'s dict (PyTorch modes eager/compiled, TensorFlow
    eager/graph)."""

    def sees(session):
        return (
            session["prints_with_values"] == session["calls"]
            and session["breakpoints_with_values"] == session["calls"]
        )

    eager_ok = {fw: sees(d["eager"]) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    hidden = [
        f"{NAMES[fw]} {mode}"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
        for mode in d
        if mode != "eager" and not sees(d[mode])
    ]

    def text(d):
        return "; ".join(
            f"{m}: {s['prints_with_values']}/{s['calls']} prints, "
            f"{s['breakpoints_with_values']}/{s['calls']} breakpoints with values"
            for m, s in d.items()
        )

    figures = {"pytorch": text(pt), "tensorflow": text(tf)}
    reason = (
        f"In eager mode print and pdb saw values on every call: PyTorch {eager_ok['pytorch']}, "
        f"TensorFlow {eager_ok['tensorflow']}; graph modes that hid them: "
        f"{', '.join(hidden) or 'none'}."
    )
    if all(eager_ok.values()) and hidden:
        return _verdict("C2", SUPPORTED, reason, figures)
    if not any(eager_ok.values()) or not hidden:
        return _verdict("C2", CONTRADICTED, reason, figures)
    return _verdict("C2", INCONCLUSIVE, reason, figures)  # eager mode showed values in one only


def _modes_text(modes, value):
    return ", ".join(f"{m} {value(e)}" for m, e in modes.items())


def _outcome(winner, supports):
    """Map a :class:`Decision` winner to an outcome: ``supports`` is the winner the claim wants."""
    if winner is None:
        return INCONCLUSIVE
    return SUPPORTED if winner == supports else CONTRADICTED


def c3_small_models(pt, tf, steps=RUN_STEPS, busy=None):
    """C3 from the small model's ``TIMING`` entries of both frameworks (``{mode: TIMING}``, one
    figure per process): each framework's fastest mode for a run of ``steps`` steps, first call
    included, decided by :func:`decide_timing`."""
    pt_mode = min(pt, key=lambda m: _median(run_totals(pt[m], steps)))
    tf_mode = min(tf, key=lambda m: _median(run_totals(tf[m], steps)))
    figures = {
        "pytorch": f"step: {_modes_text(pt, lambda e: fmt_time(_median(e['times'])))}",
        "tensorflow": f"step: {_modes_text(tf, lambda e: fmt_time(_median(e['times'])))}",
    }
    said = decide_timing(
        run_totals(pt[pt_mode], steps),
        run_totals(tf[tf_mode], steps),
        (f"PyTorch {pt_mode}", f"TensorFlow {tf_mode}"),
        busy,
    )
    reason = f"A run of {steps} steps, first call included: {said.reason}"
    return _verdict("C3", _outcome(said.winner, "a"), reason, figures)


C4_MODELS = {"large": "large MLP", "cnn": "small CNN"}


def c4_large_models(pt, tf, accelerator=None, busy=None):
    """C4 from the ``TIMING`` entries of the models it uses (``{model: {mode: TIMING}}`` with the
    models of :data:`C4_MODELS`), steady state: TensorFlow's faster graph mode against PyTorch's
    faster mode, per model; the models must agree.

    ``accelerator`` names the device the steps ran on (None: the CPU).
    """
    models = [m for m in C4_MODELS if m in pt and m in tf]
    if not models:
        return _verdict("C4", NOT_MEASURED, "No model was timed in both frameworks.")
    parts, winners, figures = [], [], {"pytorch": [], "tensorflow": []}
    for model in models:
        graph = {m: e for m, e in tf[model].items() if m in GRAPH_MODES["tensorflow"]}
        if not graph:
            return _verdict("C4", NOT_MEASURED, "TensorFlow's graph modes were not measured.")
        tf_mode = min(graph, key=lambda m: _median(graph[m]["times"]))
        pt_mode = min(pt[model], key=lambda m: _median(pt[model][m]["times"]))
        said = decide_timing(
            pt[model][pt_mode]["times"],
            graph[tf_mode]["times"],
            (f"PyTorch {pt_mode}", f"TensorFlow {tf_mode}"),
            busy,
        )
        winners.append(said.winner)
        parts.append(f"{C4_MODELS[model]}: {said.reason}")
        for fw, d in (("pytorch", pt), ("tensorflow", tf)):
            text = _modes_text(d[model], lambda e: fmt_time(_median(e["times"])))
            figures[fw].append(f"{C4_MODELS[model]}: {text}")
    figures = {fw: "; ".join(v) for fw, v in figures.items()}
    where = f"on {accelerator}" if accelerator else "on the CPU"
    reason = f"Steady step {where}. " + " ".join(parts)
    if all(w == "b" for w in winners):
        outcome = SUPPORTED
    elif all(w == "a" for w in winners):
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
        if len(set(winners)) > 1:
            reason += " The models do not agree."
    return _verdict(
        "C4", outcome, reason, figures, "GPU use (utilisation)" if accelerator else PARTLY["C4"]
    )


def c5_training_memory(pt, tf):
    """C5 from each framework's ``MEMORY`` figures in its default training mode: the memory
    added by training (``train_delta``), or the allocator peaks when both ran on a GPU."""
    accel = pt.get("accelerator_peak") is not None and tf.get("accelerator_peak") is not None
    name = "accelerator_peak" if accel else "train_delta"
    label = "allocator peak" if accel else "added by training"
    said = memory_difference(tf[name], pt[name])
    figures = {
        fw: f"{label} {d[name]:.0f} MiB (process peak {d['train_peak']:.0f} MiB)"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    ratio = pt[name] / tf[name] if tf[name] else float("inf")
    quoted = C5_QUOTED["pytorch"] / C5_QUOTED["tensorflow"]
    reason = (
        f"{label}: TensorFlow {tf[name]:.0f} MiB vs PyTorch {pt[name]:.0f} MiB ({said}); "
        f"PyTorch/TensorFlow ratio {ratio:.2f} (the quoted figures: {quoted:.2f})."
    )
    outcome = {"lower": SUPPORTED, "higher": CONTRADICTED}.get(said, INCONCLUSIVE)
    return _verdict("C5", outcome, reason, figures, None if accel else PARTLY["C5"])


def c6_graph_memory(pt, tf):
    """C6 from the ``MEMORY`` figures of every mode (``{mode: MEMORY}``) of both frameworks:
    does a graph mode add less memory per steady training step than eager mode? ``steady_delta``
    is measured above the process after the first step, so the traced graph is left out."""
    if not {"eager", "graph"} <= set(tf):
        return _verdict(
            "C6", NOT_MEASURED, "TensorFlow's eager and graph memory were not both measured."
        )
    tf_said = memory_difference(tf["graph"]["steady_delta"], tf["eager"]["steady_delta"])
    pt_said = (
        memory_difference(pt["compiled"]["steady_delta"], pt["eager"]["steady_delta"])
        if {"eager", "compiled"} <= set(pt)
        else "not measured"
    )
    figures = {
        fw: ", ".join(f"{m} {e['steady_delta']:.0f} MiB" for m, e in d.items())
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    reason = (
        f"Memory the steady steps added after the first one: TensorFlow graph "
        f"{tf['graph']['steady_delta']:.0f} vs eager {tf['eager']['steady_delta']:.0f} MiB "
        f"({tf_said}); PyTorch compiled vs eager: {pt_said}."
    )
    outcome = {"lower": SUPPORTED, "higher": CONTRADICTED}.get(tf_said, INCONCLUSIVE)
    return _verdict("C6", outcome, reason, figures, PARTLY["C6"])


def seed_to_seed_changes(accuracies):
    """Return how much the accuracy changes from one seed to the next, within one framework:
    ``|acc[i + 1] - acc[i]|`` for consecutive seeds."""
    return [abs(b - a) for a, b in zip(accuracies[:-1], accuracies[1:], strict=True)]


def c7_accuracy(pt, tf):
    """C7 from both frameworks' ``accuracy`` results (``{"seeds", "test_accuracy", "n_test"}``),
    trained from the same initial weights and batches for each seed: the per-seed difference
    between the frameworks against the change a new seed makes within a framework."""
    a, b = pt["test_accuracy"], tf["test_accuracy"]
    if len(a) < 2 or len(a) != len(b):
        return _verdict(
            "C7", INCONCLUSIVE, "At least two seeds, the same in both, are needed for a spread."
        )
    n = pt["n_test"]
    per_seed = [abs(x - y) for x, y in zip(a, b, strict=True)]
    change = statistics.median(seed_to_seed_changes(a) + seed_to_seed_changes(b))
    rounding = C7_ROUNDING_IMAGES / n
    figures = {
        fw: f"mean {statistics.mean(v):.4f} over {len(v)} seeds"
        for fw, v in (("pytorch", a), ("tensorflow", b))
    }
    reason = (
        f"Per-seed differences between the frameworks: largest {max(per_seed):.4f} "
        f"({round(max(per_seed) * n)} of {n} test images), median "
        f"{statistics.median(per_seed):.4f}; a new seed changes the accuracy by {change:.4f} "
        f"(median, within a framework); rounding allowance {C7_ROUNDING_IMAGES} images."
    )
    if all(d < change or d <= rounding + 1e-9 for d in per_seed):  # 1e-9: float ties
        return _verdict("C7", SUPPORTED, reason, figures)
    if statistics.median(per_seed) >= change and statistics.median(per_seed) > rounding + 1e-9:
        return _verdict("C7", CONTRADICTED, reason, figures)
    return _verdict("C7", INCONCLUSIVE, reason, figures)


def c8_gpu_code(pt, tf):
    """C8 from both frameworks' ``gpu_code_change()`` facts: ``{"changed", "before", "device",
    "same_losses", ...}``, the lines changed from the CPU training function to the device one."""
    n = pt["changed"]
    figures = {
        fw: f"{d['changed']} of {d['before']} lines changed"
        for fw, d in (("pytorch", pt), ("tensorflow", tf))
    }
    ran = f"both versions ran on {pt['device']} with the same losses: {pt['same_losses']}"
    reason = (
        f"Moving PyTorch's training code to a device changed {n} of {pt['before']} lines "
        f"(TensorFlow, with explicit placement: {tf['changed']}); {ran}."
    )
    missing = PARTLY["C8"] if str(pt["device"]).startswith("cpu") else None
    if not pt["same_losses"]:
        outcome = INCONCLUSIVE
    elif n <= MINIMAL_LINES:
        outcome = SUPPORTED
    elif n > MANY_LINES:
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    return _verdict("C8", outcome, reason, figures, missing)


def _majority(decisions, who):
    """True when ``who`` ("a" or "b") is clearly faster on more than half of ``decisions``."""
    return sum(d.winner == who for d in decisions.values()) * 2 > len(decisions)


def c9_speed(pt_cpu, tf_cpu, pt_gpu=None, tf_gpu=None, busy=None):
    """C9 from the operation timings of both frameworks (``{op: {"times"}}``; the training step
    is one of the rows), on the CPU and, when both were measured there, on a GPU; each half is
    decided by the majority of its rows (:data:`RULES` ``C9``)."""
    cpu = op_comparison(pt_cpu, tf_cpu, busy)
    tf_wins = [op for op, d in cpu.items() if d.winner == "b"]
    pt_wins = [op for op, d in cpu.items() if d.winner == "a"]
    undecided = [op for op, d in cpu.items() if d.winner is None]
    figures = {
        "pytorch": f"CPU: clearly faster on {len(pt_wins)} of {len(cpu)}",
        "tensorflow": f"CPU: clearly faster on {len(tf_wins)} of {len(cpu)}",
    }
    reason = (
        f"CPU: TensorFlow clearly faster on {len(tf_wins)} of {len(cpu)} rows "
        f"({', '.join(tf_wins) or 'none'}), PyTorch on {len(pt_wins)} "
        f"({', '.join(pt_wins) or 'none'}), undecided {len(undecided)}; a majority needs more "
        f"than {len(cpu) // 2}."
    )
    if busy:
        reason = f"{busy} {reason}"
    if _majority(cpu, "b"):
        outcome = SUPPORTED
    elif _majority(cpu, "a"):
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    missing = PARTLY["C9"]
    if pt_gpu and tf_gpu:
        missing = None
        gpu = op_comparison(pt_gpu, tf_gpu, busy)
        gpu_pt = [op for op, d in gpu.items() if d.winner == "a"]
        gpu_tf = [op for op, d in gpu.items() if d.winner == "b"]
        reason += (
            f" GPU: PyTorch clearly faster on {len(gpu_pt)} of {len(gpu)} rows, TensorFlow on "
            f"{len(gpu_tf)}."
        )
        gpu_outcome = (
            SUPPORTED
            if _majority(gpu, "a")
            else (CONTRADICTED if _majority(gpu, "b") else INCONCLUSIVE)
        )
        if gpu_outcome != outcome:
            outcome = INCONCLUSIVE
            reason += " The two halves disagree."
    return _verdict("C9", outcome, reason, figures, missing)


def deployment_reached(pt_rows, tf_rows):
    """Return ``{framework: set of targets reached}`` from 06's rows, with every target of
    :data:`NEUTRAL_TARGETS` that either framework reached counted for both."""
    got = {
        fw: {r["target"] for r in rows if r.get("status") == "reached"}
        for fw, rows in (("pytorch", pt_rows), ("tensorflow", tf_rows))
    }
    neutral = (got["pytorch"] | got["tensorflow"]) & set(NEUTRAL_TARGETS)
    return {fw: targets | neutral for fw, targets in got.items()}


def c10_deployment(pt_rows, tf_rows):
    """C10 from the deployment targets each framework reached in 06 (:data:`UPSTREAM` ``C10``).

    Each argument is that track's ``deployment_targets`` record (rows of
    :mod:`course_utils.targets`: ``{"target", "status", "artifact", "evidence", "note"}``), or
    None when not recorded yet. Framework-neutral targets count for both
    (:func:`deployment_reached`); only the framework-specific ones can tell the two apart.
    """
    from .. import targets

    if pt_rows is None or tf_rows is None:
        missing = [
            NAMES[fw]
            for fw, rows in (("pytorch", pt_rows), ("tensorflow", tf_rows))
            if rows is None
        ]
        return _verdict(
            "C10", NOT_MEASURED, f"No deployment targets recorded yet for {', '.join(missing)}."
        )
    reached = deployment_reached(pt_rows, tf_rows)
    specific = [t for t in targets.TARGETS if t not in NEUTRAL_TARGETS]
    only_tf = [t for t in specific if t in reached["tensorflow"] and t not in reached["pytorch"]]
    only_pt = [t for t in specific if t in reached["pytorch"] and t not in reached["tensorflow"]]
    total = len(targets.TARGETS)
    figures = {fw: f"{len(reached[fw])} of {total} targets reached" for fw in FRAMEWORKS}
    reason = (
        f"Reached: PyTorch {len(reached['pytorch'])}, TensorFlow {len(reached['tensorflow'])} of "
        f"{total} ({', '.join(NEUTRAL_TARGETS)} framework-neutral, counted for both). Of the "
        f"{len(specific)} framework-specific targets, only TensorFlow: "
        f"{', '.join(only_tf) or 'none'}; only PyTorch: {', '.join(only_pt) or 'none'}."
    )
    if only_tf and not only_pt:
        outcome = SUPPORTED
    elif only_pt and not only_tf:
        outcome = CONTRADICTED
    elif only_pt:
        outcome = INCONCLUSIVE
        reason += " Each reached a target the other did not."
    else:
        outcome = INCONCLUSIVE
        reason += " Neither reached a target the other did not: a tie on these targets."
    return _verdict("C10", outcome, reason, figures, PARTLY["C10"])


def c11_torchscript(pt, tf=None):
    """C11 from PyTorch's ``graph_transition()`` facts (``{"deprecated", "warning", "examples",
    "script_ok", "trace_ok", "compile_ok"}``, the last three lists of example names);
    TensorFlow's (``{"examples", "function_ok"}``) only adds its figure for comparison."""
    n = len(pt["examples"])
    script, compiled = len(pt["script_ok"]), len(pt["compile_ok"])
    figures = {
        "pytorch": f"deprecated {pt['deprecated']}; script {script}/{n}, trace {len(pt['trace_ok'])}/{n}, "
        f"compile {compiled}/{n}",
        "tensorflow": f"tf.function {len(tf['function_ok'])}/{len(tf['examples'])}"
        if tf
        else "n/a",
    }
    rejected = [e for e in pt["compile_ok"] if e not in pt["script_ok"]]
    reason = (
        f"torch.jit.script deprecated: {pt['deprecated']}; it accepted {script} of {n} ordinary "
        f"functions unchanged, torch.compile ran {compiled} (rejected by script only: "
        f"{', '.join(rejected) or 'none'})."
    )
    if pt["deprecated"] and rejected:
        return _verdict("C11", CONTRADICTED, reason, figures)
    if not pt["deprecated"] and script == n:
        return _verdict("C11", SUPPORTED, reason, figures)
    return _verdict("C11", INCONCLUSIVE, reason, figures)


def c12_distributed(pt, tf, scripts=None):
    """C12 from each framework's counted scripts (``scripts``: ``{framework:
    distributed_scripts()}``, :func:`script_counts` per route) and 07's records (:data:`UPSTREAM`
    ``C12``: ``{record name: value}`` per framework, or None when not recorded yet), which say
    whether the distributed run matched one process. TensorFlow's shorter route counts."""
    names = UPSTREAM["C12"]["records"]
    if pt is None or tf is None:
        missing = [NAMES[fw] for fw, d in (("pytorch", pt), ("tensorflow", tf)) if d is None]
        return _verdict(
            "C12", NOT_MEASURED, f"No distributed figures recorded yet for {', '.join(missing)}."
        )
    if not scripts or not all(scripts.get(fw) for fw in FRAMEWORKS):
        return _verdict("C12", NOT_MEASURED, "The distributed scripts were not counted.")
    diff = {fw: d.get(names["matches"]) for fw, d in (("pytorch", pt), ("tensorflow", tf))}
    failed = [NAMES[fw] for fw, v in diff.items() if v is not None and abs(v) > DISTRIBUTED_ATOL]
    unknown = [NAMES[fw] for fw, v in diff.items() if v is None]
    best = {fw: min(scripts[fw], key=lambda r: scripts[fw][r]["changed"]) for fw in FRAMEWORKS}
    lines = {fw: scripts[fw][best[fw]]["changed"] for fw in FRAMEWORKS}

    def routes(fw):
        return "; ".join(
            f"{r}: {c['single']} -> {c['distributed']} lines, {c['changed']} changed"
            for r, c in scripts[fw].items()
        )

    figures = {fw: routes(fw) for fw in FRAMEWORKS}
    parity = (
        f"07's distributed run did not match one process in {', '.join(failed)}"
        if failed
        else f"07's distributed runs matched one process to {DISTRIBUTED_ATOL:g}"
        + (f" (not recorded for {', '.join(unknown)})" if unknown else "")
    )
    reason = (
        f"Whole scripts, one process to data-parallel: PyTorch ({best['pytorch']}) changes "
        f"{lines['pytorch']} lines, TensorFlow's shorter route ({best['tensorflow']}) "
        f"{lines['tensorflow']}. {parity}."
    )
    if failed:
        outcome = INCONCLUSIVE
    elif lines["tensorflow"] - lines["pytorch"] >= DISTRIBUTED_MARGIN_LINES:
        outcome = SUPPORTED
    elif lines["pytorch"] - lines["tensorflow"] >= DISTRIBUTED_MARGIN_LINES:
        outcome = CONTRADICTED
    else:
        outcome = INCONCLUSIVE
    return _verdict("C12", outcome, reason, figures, PARTLY["C12"])


def c13_hub(counts=None):
    """C13 from a count of a model hub's models (``hub_counts()``): ``{"pytorch_only",
    "tensorflow_only", "both", "neither", "total", "sample"}``, or None when not counted (offline)."""
    quoted = (
        f"The quoted figure: {C13_QUOTED['pytorch_only']:.0%} PyTorch-only, "
        f"{C13_QUOTED['tensorflow_only']:.0%} TensorFlow-only."
    )
    if counts is None:
        return _verdict(
            "C13",
            NOT_MEASURABLE,
            quoted + " Counting needs the hub's online API; this lab runs offline by default.",
            {"pytorch": "not counted", "tensorflow": "not counted"},
        )
    total, pt, tf = counts["total"], counts["pytorch_only"], counts["tensorflow_only"]
    figures = {
        "pytorch": f"{pt} PyTorch-only of {total}",
        "tensorflow": f"{tf} TensorFlow-only of {total}",
    }
    ratio = pt / tf if tf else float("inf")
    reason = (
        f"In {counts['sample']}: {pt / total:.0%} PyTorch-only, {tf / total:.0%} TensorFlow-only "
        f"(ratio {ratio:.1f}). {quoted}"
    )
    if total < MIN_HUB_SAMPLE:
        return _verdict("C13", INCONCLUSIVE, reason + " The sample is too small.", figures)
    if ratio >= FAR_MORE_RATIO:
        return _verdict("C13", SUPPORTED, reason, figures)
    if ratio < 1:
        return _verdict("C13", CONTRADICTED, reason, figures)
    return _verdict("C13", INCONCLUSIVE, reason, figures)

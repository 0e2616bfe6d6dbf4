"""The claims lab as text in a notebook: each claim described with its rule, the verdict table
(full and one line per claim), outcome counts, source code shown as Markdown, and the text
tables of timings, memory, accuracy and operations, with the line saying how each framework was
measured.
"""

import inspect
import statistics
import textwrap

from .catalogue import CLAIMS, FRAMEWORKS, NAMES, NOT_MEASURABLE, NOT_MEASURED, OUTCOMES, RULES
from .experiments import OP_LABELS
from .rules import _median, fmt_time, op_comparison, spread


def setup_line(framework, setup):
    """Return one line saying how a framework was measured: version, device, threads, kernel
    libraries, and (when ``setup`` has them) the other programs' CPU use its process saw."""
    load = [f"{x:.1f}" for x in setup.get("load") or () if x is not None]
    kind = setup.get("load_kind") or "load average"
    label = "others' CPU use" if kind == "cpu use" else "load average"
    text = (
        f"{NAMES[framework]} {setup['version']} on {setup['device']}: {setup['threads']} threads "
        f"({setup['interop_threads']} inter-op), {setup['kernels']}"
    )
    if "keras" in setup:
        text += f", Keras {setup['keras']}"
    return text + (f"; {label} {' -> '.join(load)}" if load else "")


def format_table(verdicts, width=100):
    """Return the verdict table as plain text: one block per claim (outcome, figures, reason)."""

    def block(text, hang=2):
        return textwrap.fill(
            text, width, initial_indent=" " * 5, subsequent_indent=" " * (5 + hang)
        )

    lines = []
    for v in verdicts:
        lines.append(f"{v.claim:>3}  {CLAIMS[v.claim].title:<44} {v.label}")
        lines += [block(f"{NAMES[fw]}: {v.figures[fw]}") for fw in FRAMEWORKS if v.figures.get(fw)]
        lines.append(block(v.reason, hang=0))
        if v.missing and v.outcome not in (NOT_MEASURABLE, NOT_MEASURED):
            lines.append(block(f"not measured here: {v.missing}"))
    return "\n".join(lines)


def summary_table(verdicts):
    """Return the verdict table in one line per claim: claim, title, outcome (and "partly
    measured" where part of the claim could not be measured here)."""
    return "\n".join(f"{v.claim:>3}  {CLAIMS[v.claim].title:<44} {v.label}" for v in verdicts)


def outcome_counts(verdicts):
    """Return ``{outcome: how many claims}`` for every outcome, in :data:`OUTCOMES` order, and
    ``"partly measured"``: how many of the decided ones were measured only in part."""
    counts = {o: sum(v.outcome == o for v in verdicts) for o in OUTCOMES}
    counts["partly measured"] = sum(v.label.endswith("partly measured") for v in verdicts)
    return counts


# ---------------------------------------------------------------- showing it in a notebook


def describe(claim, width=100):
    """Return the claim as commonly written, why it might be true, and the rule that decides it
    (plain text, wrapped to ``width``)."""
    c = CLAIMS[claim]

    def wrap(text):
        return textwrap.fill(text, width, subsequent_indent="    ")

    return "\n".join(
        [
            f"{c.id} · {c.title}",
            wrap(f'claim: "{c.text}"'),
            wrap(f"why it might be true: {c.why}"),
            wrap(f"rule: {RULES[claim]}"),
        ]
    )


def source(*functions):
    """Return the source code of ``functions`` as a Markdown code block, which Jupyter shows
    highlighted (an ``IPython.display.Markdown`` object)."""
    from IPython.display import Markdown

    text = "\n\n\n".join(textwrap.dedent(inspect.getsource(f)).rstrip() for f in functions)
    return Markdown(f"```python\n{text}\n```")


def timing_table(results, size):
    """Return a text table of one model's training step in every mode of both frameworks, over
    the timing processes: median first call, median step with its range between processes, and
    for graph modes the break-even step count against that framework's eager step
    (:func:`course_utils.compiling.break_even_steps`, from the medians)."""
    from ..compiling import break_even_steps

    head = (
        f"{'':<11} {'mode':<9} {'first call':>11} {'median step':>12} "
        f"{'range over processes':>22} {'break-even':>11}"
    )
    lines = [head]
    for fw in FRAMEWORKS:
        modes = results[fw]["timing"][size]
        eager = _median(modes["eager"]["times"])
        for mode, e in modes.items():
            lo, med, hi = spread(e["times"])
            first = _median(e["first_s"])
            if mode == "eager":
                even = "-"
            else:
                n = break_even_steps(first, eager, med)
                even = f"{n} steps" if n else "never"
            span = f"{fmt_time(lo)}-{fmt_time(hi)}"
            lines.append(
                f"{NAMES[fw]:<11} {mode:<9} {fmt_time(first):>11} {fmt_time(med):>12} "
                f"{span:>22} {even:>11}"
            )
    return "\n".join(lines)


def memory_table(results):
    """Return a text table of the training-memory figures (MiB) of every mode measured."""
    head = (
        f"{'':<11} {'mode':<9} {'runtime':>8} {'1st step':>9} {'steady':>8} {'peak':>8} "
        f"{'allocator':>10}"
    )
    lines = [
        head,
        f"{'':<21}(MiB: after imports, data and model; added by the first step; added by later",
        f"{'':<21} steps above the process after the first; peak; allocator peak on a GPU)",
    ]
    for fw in FRAMEWORKS:
        for mode, m in results[fw]["memory"].items():
            accel = "-" if m["accelerator_peak"] is None else f"{m['accelerator_peak']:.0f}"
            lines.append(
                f"{NAMES[fw]:<11} {mode:<9} {m['runtime']:>8.0f} {m['first_step_delta']:>9.1f} "
                f"{m['steady_delta']:>8.1f} {m['train_peak']:>8.0f} {accel:>10}"
            )
    return "\n".join(lines)


def accuracy_table(results):
    """Return a text table of the test accuracy of every seed in both frameworks."""
    seeds = results["pytorch"]["accuracy"]["seeds"]
    lines = [f"{'seed':<11}" + "".join(f"{s:>8}" for s in seeds) + f"{'mean':>9}{'sd':>8}"]
    for fw in FRAMEWORKS:
        acc = results[fw]["accuracy"]["test_accuracy"]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(
            f"{NAMES[fw]:<11}"
            + "".join(f"{a:>8.4f}" for a in acc)
            + f"{statistics.mean(acc):>9.4f}{sd:>8.4f}"
        )
    return "\n".join(lines)


def ops_table(pt_ops, tf_ops, busy=None):
    """Return a text table of operation times in both frameworks (``{op: {"times"}}`` each, one
    figure per process): median and range between processes, and which framework the timing
    rule (:func:`decide_timing`) calls clearly faster, or why neither."""
    said = op_comparison(pt_ops, tf_ops, busy)
    lines = [f"{'operation':<32} {'PyTorch':>22} {'TensorFlow':>22}  clearly faster"]
    for op, d in said.items():
        cells = []
        for ops in (pt_ops, tf_ops):
            lo, med, hi = spread(ops[op]["times"])
            cells.append(f"{fmt_time(med)} ({fmt_time(lo)}-{fmt_time(hi)})")
        who = {"a": "PyTorch", "b": "TensorFlow"}.get(d.winner)
        if who is None:
            why = d.reason.rsplit(": ", 1)[-1].rstrip(".")
            who = "neither: " + ("busy machine" if busy else why)
        label = OP_LABELS.get(op, op)
        lines.append(f"{label:<32} {cells[0]:>22} {cells[1]:>22}  {who}")
    return "\n".join(lines)

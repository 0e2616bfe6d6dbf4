"""09_claims_lab: verdict functions on constructed figures, the harness's processes, the records
of both tracks, the checkers and the claims table in the run report.

Every verdict function is tested on figures built so that the right outcome is certain (clear
differences far outside the rule's margins, or exact ties), never on measurements of this machine.
The stored records are compared across tracks: both notebooks measure both frameworks, so the
facts that do not depend on timing (demonstrations, line counts, accuracies from the same
weights and batches) must agree.
"""

import os
import statistics
import time
from pathlib import Path

import nbformat.v4 as nbf
import pytest

import course_utils as cu
from conftest import write_nb
from course_tools import notebooks, report, runner
from course_utils import claims
from course_utils.checks import check
from course_utils.claims import CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED, SUPPORTED
from course_utils.records import MIME, by_name, read_records

cu.quiet()

ROOT = Path(__file__).resolve().parents[1]
CONCEPT = "09_claims_lab"


def timing(first, median, spread=0.0, n=claims.MIN_PROCESSES):
    """A TIMING entry of ``n`` timing processes whose figures run evenly from median - spread to
    median + spread (the range between processes), each with the same first call."""
    half = (n - 1) / 2
    times = [median + spread * (i - half) / half for i in range(n)] if n > 1 else [median]
    return {"first_s": [first] * n, "times": times}


def ops(**medians):
    return {op: timing(0.0, m, m / 100) for op, m in medians.items()}


# ---------------------------------------------------------------- helpers


def test_quartiles_spreads_and_run_totals():
    entry = timing(2.0, 1.0, 0.4)
    assert claims.spread(entry["times"]) == pytest.approx((0.6, 1.0, 1.4))
    assert claims.quartiles([3.0]) == (3.0, 3.0, 3.0)
    assert claims.run_totals(entry, steps=11) == pytest.approx([8.0, 12.0, 16.0])


# ---------------------------------------------------------------- the timing rule


def test_one_constant_declares_the_minimum_effect_and_every_timing_rule_names_it():
    assert claims.MIN_EFFECT == 0.10 and claims.MIN_PROCESSES >= 3
    for claim in ("C3", "C4", "C9"):
        assert "10%" in claims.RULES[claim] and "do not overlap" in claims.RULES[claim]
        assert "highest reading" in claims.RULES[claim]
    assert "more than half of the rows" in claims.RULES["C9"]


def test_a_clear_win_needs_ranges_apart_and_the_minimum_effect():
    said = claims.decide_timing([1.0, 1.05, 1.1], [2.0, 2.1, 2.2])
    assert said.winner == "a" and said.ratio == pytest.approx(2.0)
    assert "PyTorch 2.00x faster, the ranges apart" in said.reason
    assert claims.decide_timing([2.0, 2.1, 2.2], [1.0, 1.05, 1.1]).winner == "b"


def test_overlapping_ranges_between_processes_are_inconclusive():
    # medians 1.0 vs 1.5: a large effect, but one PyTorch process was as slow as TensorFlow
    said = claims.decide_timing([0.9, 1.0, 1.6], [1.4, 1.5, 1.6])
    assert said.winner is None and "the ranges between processes overlap" in said.reason


def test_a_tiny_effect_is_inconclusive_even_with_ranges_apart():
    said = claims.decide_timing([1.00, 1.001, 1.002], [1.05, 1.051, 1.052])
    assert said.winner is None
    assert "faster by 5% only, below the minimum effect of 10%" in said.reason


def test_a_busy_machine_makes_a_clear_win_inconclusive_and_says_what_the_figures_said():
    said = claims.decide_timing([1.0, 1.05, 1.1], [2.0, 2.1, 2.2], busy="The machine was busy.")
    assert said.winner is None
    assert said.reason.startswith("The machine was busy. The figures alone say PyTorch is 2.00x")


def test_a_missing_framework_or_too_few_processes_is_inconclusive():
    said = claims.decide_timing([1.0, 1.0, 1.0], [])
    assert said.winner is None and said.reason == "TensorFlow was not measured."
    said = claims.decide_timing([1.0, 1.1], [2.0, 2.1, 2.2])
    assert said.winner is None and "timed in 2 process(es); the rule needs 3" in said.reason
    pt = {"eager": timing(0.0, 0.001, 0.0001)}
    assert claims.c3_small_models(pt, {"graph": timing(0.0, 0.01, 0.0001, n=1)}).outcome == (
        INCONCLUSIVE
    )


@pytest.mark.parametrize(
    "a, b, said",
    [
        (100, 200, "lower"),
        (200, 100, "higher"),
        (100, 105, "same"),
        (1000, 1080, "same"),
        (1000, 1200, "lower"),
    ],
)
def test_memory_difference_needs_both_margins(a, b, said):
    assert claims.memory_difference(a, b) == said  # 10% and 8 MiB


def test_mlp_spec_matches_the_models_the_course_builds():
    torch = pytest.importorskip("torch")
    from course_utils import compiling

    for size in ({"d_in": 64, "hidden": 64, "depth": 2}, {"d_in": 64, "hidden": 32, "depth": 1}):
        model = compiling.torch_mlp(size["d_in"], size["hidden"], depth=size["depth"])
        assert claims.parameter_count(size) == sum(p.numel() for p in model.parameters())
    assert claims.mlp_spec(64, 64, 1) == [tuple(layer) for layer in cu.training.MLP_SPEC]
    assert isinstance(torch.__version__, str)


def test_full_mode_trains_tens_of_millions_of_parameters():
    quick, full = claims.settings(quick=True), claims.settings(quick=False)
    assert claims.parameter_count(full["large"]) >= 10_000_000
    assert claims.parameter_count(quick["large"]) < claims.parameter_count(full["large"])
    assert len(full["seeds"]) > len(quick["seeds"]) >= 2
    assert claims.settings(threads=3)["threads"] == 3
    assert set(quick["ops"]) == set(claims.OP_SHAPES)


def test_op_inputs_have_the_shapes_both_frameworks_use():
    inputs = claims.op_inputs()
    assert inputs["matmul"][0].shape == (512, 512)
    image, kernel = inputs["conv2d"]
    assert image.shape == (16, 32, 32, 32) and kernel.shape == (3, 3, 32, 32)  # NHWC, HWIO
    assert all(a.dtype.name == "float32" for arrays in inputs.values() for a in arrays)


def before(model, X, y):
    """Train."""
    opt = make(model)  # make the optimizer
    for _ in range(3):
        step(opt, X, y)
    return opt


def after(device, model, X, y):
    """Train on a device."""
    model = model.to(device)
    X, y = X.to(device), y.to(device)

    opt = make(model)
    with placed(device):
        for _ in range(3):
            step(opt, X, y)
    return opt


def make(model):
    return model


def step(*args):
    return args


def placed(device):
    return device


def test_changed_lines_ignores_def_docstring_comments_blank_lines_and_indentation():
    assert claims.code_lines(before) == [
        "opt = make(model)",
        "for _ in range(3):",
        "step(opt, X, y)",
        "return opt",
    ]
    change = claims.changed_lines(before, after)
    assert (change["before"], change["after"]) == (4, 7)
    assert change["changed"] == 3  # two lines added before, the `with` line inserted
    assert "+model = model.to(device)" in change["diff"]


def test_scripted_breakpoints_answer_pdb_and_restore_the_hook():
    import sys

    def inspected(x):
        h = x * 2
        breakpoint()
        return h

    hook = sys.breakpointhook
    with claims.scripted_breakpoints(["p h", "p h + 1"]) as transcripts:
        inspected(3)
        inspected(4)
    assert sys.breakpointhook is hook
    assert [claims.pdb_answers(t) for t in transcripts] == [["6", "7"], ["8", "9"]]


def test_debug_session_counts_prints_and_breakpoints_with_values():
    total = claims.DEBUG_SUM

    class Fake:
        def __init__(self, h):
            self.h = h

        def __call__(self):
            h = self.h  # noqa: F841  (pdb reads it)
            print("h =", "[[1.25 0.75 0.25]]" if self.h == total else "Tensor(shape=(2, 3))")
            breakpoint()

    seen = claims.debug_session(Fake(total), 3, ["p h"])
    assert (seen["prints"], seen["prints_with_values"]) == (3, 3)
    assert (seen["breakpoints"], seen["breakpoints_with_values"]) == (3, 3)
    blind = claims.debug_session(Fake("symbolic"), 2, ["p h"])
    assert (blind["prints_with_values"], blind["breakpoints_with_values"]) == (0, 0)
    assert blind["first_answers"] == ["'symbolic'"]
    assert total == 4.5  # relu([1.25, 0.75, 0.25]) summed over two rows


def test_debug_layer_values_are_exact_binary_fractions():
    assert claims.DEBUG_H.tolist() == [[1.25, 0.75, 0.25]] * 2


def test_graph_size_counts_autograd_nodes():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, requires_grad=True)
    assert claims.graph_size((x * 2).sum().grad_fn) == 3  # SumBackward, MulBackward, AccumulateGrad
    assert claims.graph_size(None) == 0


def test_hub_counts_by_tag():
    models = [
        {"tags": ["pytorch"]},
        {"tags": ["pytorch", "tf"]},
        {"tags": ["tf"]},
        {"tags": []},
        {},
    ]
    counts = claims.hub_counts(models, "five models")
    assert counts == {
        "pytorch_only": 1,
        "tensorflow_only": 1,
        "both": 1,
        "neither": 2,
        "total": 5,
        "sample": "five models",
    }


# ---------------------------------------------------------------- verdicts on constructed figures

C1_PT = {
    "graph_follows_data": True,
    "graph_nodes": [5, 11],
    "loop_steps": [3, 9],
    "gradients": [8, 512],
}
C1_TF = {
    "eager_by_default": True,
    "graph_follows_data": True,
    "function_traces": 1,
    "function_has_loop_op": True,
    "loop_steps": [3, 9],
}


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (C1_PT, C1_TF, SUPPORTED),
        ({**C1_PT, "graph_follows_data": False}, C1_TF, CONTRADICTED),
        (C1_PT, {**C1_TF, "eager_by_default": False}, CONTRADICTED),
        (C1_PT, {**C1_TF, "function_traces": 2}, INCONCLUSIVE),
    ],
)
def test_c1(pt, tf, outcome):
    assert claims.c1_define_by_run(pt, tf).outcome == outcome


def session(prints, breakpoints, calls=3):
    return {"calls": calls, "prints_with_values": prints, "breakpoints_with_values": breakpoints}


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (
            {"eager": session(3, 3), "compiled": session(3, 3)},
            {"eager": session(3, 3), "graph": session(0, 0)},
            SUPPORTED,
        ),
        (
            {"eager": session(3, 3), "compiled": session(3, 3)},
            {"eager": session(3, 3), "graph": session(3, 3)},
            CONTRADICTED,
        ),
        (
            {"eager": session(0, 0), "compiled": session(0, 0)},
            {"eager": session(1, 3), "graph": session(0, 0)},
            CONTRADICTED,
        ),
        (
            {"eager": session(3, 3), "compiled": session(3, 3)},
            {"eager": session(3, 2), "graph": session(0, 0)},
            INCONCLUSIVE,
        ),
    ],
)
def test_c2(pt, tf, outcome):
    assert claims.c2_debugging(pt, tf).outcome == outcome


FAST, SLOW = timing(0.001, 0.001, 0.0001), timing(0.5, 0.004, 0.0001)


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (
            {"eager": FAST, "compiled": timing(10, 0.0005)},
            {"eager": timing(0.01, 0.01), "graph": SLOW},
            SUPPORTED,
        ),
        ({"eager": SLOW}, {"eager": timing(0.01, 0.01), "graph": FAST}, CONTRADICTED),
        (
            {"eager": timing(0.0, 0.001, 0.0004)},
            {"graph": timing(0.0, 0.00105, 0.0004)},
            INCONCLUSIVE,
        ),
    ],
)
def test_c3_compares_a_short_run_first_call_included(pt, tf, outcome):
    assert claims.c3_small_models(pt, tf).outcome == outcome


def test_c3_counts_the_first_call():
    # compiled is faster per step but its first call costs more than the whole run saves
    pt = {"eager": timing(0.0, 0.002, 0.0001)}
    tf = {"graph": timing(5.0, 0.001, 0.0001)}
    assert claims.c3_small_models(pt, tf, steps=500).outcome == SUPPORTED
    assert claims.c3_small_models(pt, tf, steps=100_000).outcome == CONTRADICTED


PT_FAST = {"eager": timing(0.1, 0.005, 0.0002), "compiled": timing(2, 0.006, 0.0002)}
PT_SLOW = {"eager": timing(0.1, 0.010, 0.0005)}
TF_FAST = {"eager": timing(0, 0.02), "graph": timing(0.1, 0.005, 0.0002), "xla": timing(1, 0.03)}
TF_SLOW = {"graph": timing(0.1, 0.02, 0.001), "xla": timing(1, 0.03)}
TF_EVEN = {"xla": timing(0.1, 0.0102, 0.004)}


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        ({"large": PT_SLOW, "cnn": PT_SLOW}, {"large": TF_FAST, "cnn": TF_FAST}, SUPPORTED),
        ({"large": PT_SLOW, "cnn": PT_SLOW}, {"large": TF_SLOW, "cnn": TF_SLOW}, CONTRADICTED),
        # the models disagree: TensorFlow's graph wins on the CNN only
        ({"large": PT_FAST, "cnn": PT_SLOW}, {"large": TF_SLOW, "cnn": TF_FAST}, INCONCLUSIVE),
        ({"large": PT_SLOW, "cnn": PT_SLOW}, {"large": TF_FAST, "cnn": TF_EVEN}, INCONCLUSIVE),
        ({"large": PT_SLOW}, {"large": {"eager": timing(0.1, 0.001)}}, NOT_MEASURED),
    ],
)
def test_c4_needs_both_models_and_uses_tensorflows_graph_modes_only(pt, tf, outcome):
    verdict = claims.c4_large_models(pt, tf)
    assert verdict.outcome == outcome
    if outcome != NOT_MEASURED:
        assert verdict.missing == claims.PARTLY["C4"] and "partly measured" in verdict.label
    if pt.get("large") is PT_FAST:
        assert "The models do not agree." in verdict.reason


def mem(peak, delta, accel=None):
    return {"train_peak": peak, "train_delta": delta, "accelerator_peak": accel}


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (mem(500, 100), mem(400, 50), SUPPORTED),
        (mem(400, 50), mem(500, 100), CONTRADICTED),
        (mem(400, 100), mem(600, 50), SUPPORTED),  # the process peak (the runtimes) does not count
        (mem(400, 100), mem(402, 101), INCONCLUSIVE),  # within the margins
        (
            mem(400, 50, accel=3500),
            mem(600, 100, accel=1700),
            SUPPORTED,
        ),  # a GPU: the allocator decides
    ],
)
def test_c5_counts_the_memory_added_by_training(pt, tf, outcome):
    verdict = claims.c5_training_memory(pt, tf)
    assert verdict.outcome == outcome
    assert "quoted figures: 2.06" in verdict.reason
    on_gpu = pt["accelerator_peak"] is not None
    assert verdict.missing == ("" if on_gpu else claims.PARTLY["C5"])
    if not on_gpu:
        assert "cannot be checked on a CPU" in str(verdict)


def test_c5_reports_the_ratio_against_the_quoted_one():
    verdict = claims.c5_training_memory(mem(400, 50, accel=3500), mem(600, 100, accel=1700))
    assert "ratio 2.06" in verdict.reason and "allocator peak" in verdict.reason


def steady(**modes):
    return {mode: {"steady_delta": mib} for mode, mib in modes.items()}


@pytest.mark.parametrize(
    "tf, outcome",
    [
        (steady(eager=100, graph=50), SUPPORTED),
        (steady(eager=100, graph=150), CONTRADICTED),
        (steady(eager=100, graph=102), INCONCLUSIVE),
        (steady(graph=50), NOT_MEASURED),
    ],
)
def test_c6(tf, outcome):
    verdict = claims.c6_graph_memory(steady(eager=40, compiled=60), tf)
    assert verdict.outcome == outcome
    if outcome != NOT_MEASURED:
        assert "fragmentation" in verdict.missing


def acc(values, n=100):
    return {"seeds": list(range(len(values))), "test_accuracy": values, "n_test": n}


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (acc([0.90, 0.92, 0.94]), acc([0.90, 0.92, 0.94]), SUPPORTED),
        # one image apart on every seed, seeds two images apart: within the rounding allowance
        (acc([0.90, 0.92, 0.94]), acc([0.91, 0.93, 0.95]), SUPPORTED),
        # seeds move the accuracy by 10 points, the frameworks differ by 3 on each seed
        (acc([0.70, 0.80, 0.90]), acc([0.73, 0.83, 0.87]), SUPPORTED),
        # seeds move it by 1 point, the frameworks differ by 10 on each seed
        (acc([0.90, 0.91, 0.92]), acc([0.80, 0.81, 0.82]), CONTRADICTED),
        # the means agree but seed by seed the frameworks differ by as much as a seed change
        (acc([0.80, 0.90, 0.80]), acc([0.90, 0.80, 0.90]), CONTRADICTED),
        (acc([0.90, 0.90, 0.90]), acc([0.91, 0.91, 0.91]), SUPPORTED),  # rounding allowance
        # one seed differs by more than a seed change, the others agree
        (acc([0.90, 0.92, 0.94]), acc([0.90, 0.92, 0.99]), INCONCLUSIVE),
        (acc([0.90]), acc([0.95]), INCONCLUSIVE),
    ],
)
def test_c7_compares_per_seed_differences_with_seed_to_seed_changes(pt, tf, outcome):
    assert claims.c7_accuracy(pt, tf).outcome == outcome


def test_seed_to_seed_changes_are_consecutive_differences():
    assert claims.seed_to_seed_changes([0.9, 0.8, 0.85]) == pytest.approx([0.1, 0.05])


def change(n, same=True):
    return {"changed": n, "before": 10, "device": "cpu", "same_losses": same}


@pytest.mark.parametrize(
    "pt, outcome",
    [
        (change(2), SUPPORTED),
        (change(12), CONTRADICTED),
        (change(7), INCONCLUSIVE),
        (change(2, False), INCONCLUSIVE),
    ],
)
def test_c8(pt, outcome):
    assert claims.c8_gpu_code(pt, change(1)).outcome == outcome


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        # a majority of rows: TensorFlow clearly faster on 2 of 3
        (ops(matmul=2.0, sum=2.0, add=1.0), ops(matmul=1.0, sum=1.0, add=2.0), SUPPORTED),
        # TensorFlow faster on one row of three: no longer enough
        (ops(matmul=2.0, sum=1.0, add=1.0), ops(matmul=1.0, sum=2.0, add=2.0), CONTRADICTED),
        (ops(matmul=2.0, sum=1.0), ops(matmul=1.0, sum=2.0), INCONCLUSIVE),  # one each: a tie
        (ops(matmul=1.0), ops(matmul=1.001), INCONCLUSIVE),
        (ops(matmul=1.0, sum=1.0), ops(matmul=1.05, sum=1.05), INCONCLUSIVE),  # below 10 %
    ],
)
def test_c9_cpu_half_is_decided_by_a_majority_of_rows(pt, tf, outcome):
    verdict = claims.c9_speed(pt, tf)
    assert verdict.outcome == outcome
    assert verdict.missing == claims.PARTLY["C9"] and "a majority needs more than" in verdict.reason


def test_c9_with_a_gpu_needs_both_halves_to_agree():
    cpu_pt, cpu_tf = ops(matmul=2.0), ops(matmul=1.0)  # TensorFlow faster on the CPU
    verdict = claims.c9_speed(cpu_pt, cpu_tf, ops(matmul=1.0), ops(matmul=2.0))
    assert verdict.outcome == SUPPORTED and verdict.missing == ""
    assert claims.c9_speed(cpu_pt, cpu_tf, ops(matmul=2.0), ops(matmul=1.0)).outcome == INCONCLUSIVE


def targets(*reached):
    names = ["own format, reloaded in Python", "mobile/edge runtime", "ONNX", "browser"]
    return [
        {"target": t, "status": "reached" if t in reached else "failed", "artifact": None}
        for t in names
    ]


OWN, EDGE = "own format, reloaded in Python", "mobile/edge runtime"


@pytest.mark.parametrize(
    "pt, tf, outcome",
    [
        (targets(OWN), targets(OWN, EDGE), SUPPORTED),
        (targets(OWN, EDGE), targets(OWN), CONTRADICTED),
        # a framework-neutral target reached by one counts for both: a tie
        (targets(OWN, "ONNX"), targets(OWN, "browser"), INCONCLUSIVE),
        (targets(OWN), targets(OWN, "ONNX", "browser"), INCONCLUSIVE),
        (targets(OWN, EDGE), targets(OWN, EDGE), INCONCLUSIVE),  # a tie is not contradicted
        (targets(EDGE), targets(OWN), INCONCLUSIVE),  # each reached one the other did not
        (None, targets("ONNX"), NOT_MEASURED),
    ],
)
def test_c10_counts_framework_neutral_targets_for_both(pt, tf, outcome):
    verdict = claims.c10_deployment(pt, tf)
    assert verdict.outcome == outcome


def test_deployment_reached_adds_neutral_targets_to_both():
    got = claims.deployment_reached(targets(OWN, "ONNX"), targets("browser"))
    assert got == {"pytorch": {OWN, "ONNX", "browser"}, "tensorflow": {"ONNX", "browser"}}


def script_facts(deprecated, script_ok, examples=("a", "b", "c")):
    return {
        "examples": list(examples),
        "deprecated": deprecated,
        "warning": None,
        "script_ok": list(script_ok),
        "trace_ok": [],
        "compile_ok": list(examples),
    }


@pytest.mark.parametrize(
    "pt, outcome",
    [
        (script_facts(True, ["a"]), CONTRADICTED),
        (script_facts(False, ["a", "b", "c"]), SUPPORTED),
        (script_facts(True, ["a", "b", "c"]), INCONCLUSIVE),
        (script_facts(False, ["a"]), INCONCLUSIVE),
    ],
)
def test_c11(pt, outcome):
    assert claims.c11_torchscript(pt, {"examples": ["a"], "function_ok": ["a"]}).outcome == outcome


LINES, MATCHES = (claims.UPSTREAM["C12"]["records"][k] for k in ("lines", "matches"))


def dist(matches=True):
    return {LINES: 7, MATCHES: 3e-8 if matches else 0.02}


def routes(**changed):
    return {
        name: {"single": 20, "distributed": 20 + n, "changed": n} for name, n in changed.items()
    }


@pytest.mark.parametrize(
    "pt, tf, scripts, outcome",
    [
        (
            dist(),
            dist(),
            {"pytorch": routes(ddp=3), "tensorflow": routes(loop=9, fit=8)},
            SUPPORTED,
        ),
        # Keras fit is TensorFlow's shorter route and counts
        (
            dist(),
            dist(),
            {"pytorch": routes(ddp=12), "tensorflow": routes(loop=13, fit=2)},
            CONTRADICTED,
        ),
        (
            dist(),
            dist(),
            {"pytorch": routes(ddp=4), "tensorflow": routes(loop=9, fit=5)},
            INCONCLUSIVE,
        ),
        (
            dist(False),
            dist(),
            {"pytorch": routes(ddp=3), "tensorflow": routes(loop=9)},
            INCONCLUSIVE,
        ),
        (None, dist(), {"pytorch": routes(ddp=3), "tensorflow": routes(loop=9)}, NOT_MEASURED),
        (dist(), dist(), None, NOT_MEASURED),
    ],
)
def test_c12_counts_whole_scripts_and_tensorflows_shorter_route(pt, tf, scripts, outcome):
    assert claims.c12_distributed(pt, tf, scripts).outcome == outcome


def test_script_counts_include_imports_launcher_and_main_guard():
    single = "import torch\n\n\ndef main():\n    print(1)  # a comment\n"
    distributed = (
        single.replace("print(1)", "print(2)") + "\nif __name__ == '__main__':\n    main()\n"
    )
    got = claims.script_counts({"r": (single, distributed)})
    assert got == {"r": {"single": 3, "distributed": 5, "changed": 3}}


def test_the_counted_scripts_of_both_frameworks_are_complete():
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    from course_utils import claims_tf, claims_torch

    pt, tf = claims_torch.distributed_scripts(), claims_tf.distributed_scripts()
    assert set(tf) == {"custom loop (MirroredStrategy)", "Keras fit (MirroredStrategy)"}
    ddp = claims_torch.DISTRIBUTED_SCRIPT
    for needed in ("init_process_group", "mp.spawn", "DistributedSampler", "destroy_process_group"):
        assert needed in ddp
    for _, (single, distributed) in {
        **claims_torch.DISTRIBUTED_ROUTES,
        **claims_tf.DISTRIBUTED_ROUTES,
    }.items():
        compile(single, "single", "exec"), compile(distributed, "distributed", "exec")
        assert (
            'if __name__ == "__main__":' in single and 'if __name__ == "__main__":' in distributed
        )
    assert all(r["changed"] > 0 for r in [*pt.values(), *tf.values()])


def hub(pt, tf, total):
    return {
        "pytorch_only": pt,
        "tensorflow_only": tf,
        "both": 0,
        "neither": total - pt - tf,
        "total": total,
        "sample": "a test",
    }


@pytest.mark.parametrize(
    "counts, outcome",
    [
        (None, NOT_MEASURABLE),
        (hub(850, 80, 1000), SUPPORTED),
        (hub(100, 200, 1000), CONTRADICTED),
        (hub(300, 200, 1000), INCONCLUSIVE),
        (hub(50, 1, 60), INCONCLUSIVE),  # too small a sample
    ],
)
def test_c13(counts, outcome):
    verdict = claims.c13_hub(counts)
    assert verdict.outcome == outcome
    assert "85% PyTorch-only" in verdict.reason


def test_a_verdict_refuses_an_unknown_outcome():
    with pytest.raises(ValueError, match="unknown outcome"):
        claims.Verdict("C1", "probably", "", "")


def test_every_claim_has_a_rule_and_the_rules_print_their_thresholds():
    assert list(claims.CLAIMS) == [f"C{i}" for i in range(1, 14)] == list(claims.RULES)
    assert str(claims.RUN_STEPS) in claims.RULES["C3"]
    assert str(claims.MINIMAL_LINES) in claims.RULES["C8"]
    assert "10%" in claims.RULES["C5"] and "8 MiB" in claims.RULES["C5"]
    assert claims.describe("C5").startswith("C5 · ") and "rule:" in claims.describe("C5")


def fake_result(framework):
    memory = {"runtime": 400.0, "first_step_delta": 20.0, "steady_delta": 20.0, "train_peak": 420.0}
    memory.update(
        train_delta=20.0, accelerator_peak=None, peak_was_reset=True, parameters=10, steps=4
    )
    modes = claims.MODES[framework]
    demos = {
        "pytorch": {
            "c1": C1_PT,
            "c2": {"eager": session(3, 3), "compiled": session(3, 3)},
            "c8": change(2),
            "c11": script_facts(True, ["a"]),
            "c12": routes(ddp=16),
        },
        "tensorflow": {
            "c1": C1_TF,
            "c2": {"eager": session(3, 3), "graph": session(0, 0)},
            "c8": change(1),
            "c11": {"examples": ["a"], "function_ok": ["a"]},
            "c12": routes(loop=16, fit=2),
        },
    }[framework]
    return {
        "framework": framework,
        "setup": {"accelerator": None},
        "memory": {m: dict(memory) for m in (claims.DEFAULT_MODE[framework], modes[1])},
        "timing": {
            size: {m: timing(0.1, 0.01, 0.001) for m in modes} for size in ("small", "large", "cnn")
        },
        "loads": [{"process": "p", "when": "before", "value": 0.0, "kind": "cpu use", "cpus": 2}],
        "accuracy": acc([0.9, 0.92, 0.94]),
        "ops": {"cpu": ops(matmul=1.0, sum=1.0), "gpu": None},
        "demos": demos,
        "seconds": [],
    }


def test_assess_gives_every_claim_in_order_and_plot_data_for_the_quantitative_ones():
    results = {fw: fake_result(fw) for fw in claims.FRAMEWORKS}
    verdicts = claims.assess(results)
    assert [v.claim for v in verdicts] == list(claims.CLAIMS)
    outcomes = {v.claim: v.outcome for v in verdicts}
    assert outcomes["C10"] == outcomes["C12"] == NOT_MEASURED
    assert outcomes["C13"] == NOT_MEASURABLE
    counts = claims.outcome_counts(verdicts)
    assert sum(counts[o] for o in claims.OUTCOMES) == 13
    assert counts["partly measured"] == sum("partly measured" in v.label for v in verdicts) >= 4
    data = claims.plot_data(results)
    assert set(claims.PLOTTED) <= set(data)
    for claim in claims.PLOTTED:
        claims.plot(claim, data)
    import matplotlib.pyplot as plt

    plt.close("all")
    text = claims.format_table(verdicts)
    assert all(c in text for c in claims.CLAIMS)
    assert "not measured here: GPU memory" in text
    assert "SUPPORTED, partly measured" not in claims.summary_table(verdicts).split("C13")[1]


# ---------------------------------------------------------------- C10 and C12 from other lessons


def _lesson_with(root, concept, track, records):
    cells = [("code", "x = 1")]
    path = write_nb(root / "notebooks" / concept / f"{track}.ipynb", cells)
    nb = notebooks.read(path)
    nb.cells[0].outputs = [
        nbf.new_output(
            "display_data",
            data={
                MIME: {"concept": concept, "track": track, "name": name, "value": value},
                "text/plain": name,
            },
        )
        for name, value in records.items()
    ]
    notebooks.write(nb, path)
    return path


def test_upstream_reads_committed_records_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_WORKDIR", raising=False)
    key = claims.UPSTREAM["C10"]["records"]["targets"]
    _lesson_with(tmp_path, "06_deployment", "pytorch", {key: targets(OWN), "other": 1})
    _lesson_with(tmp_path, "06_deployment", "tensorflow", {key: targets(OWN, EDGE)})
    figures = claims.upstream("C10", root=tmp_path)
    assert figures["source"] == "the committed notebooks' stored records (notebooks/06_deployment/)"
    assert figures["pytorch"] == {key: targets(OWN)}
    assert claims.upstream_verdict("C10", figures).outcome == SUPPORTED


def test_upstream_prefers_the_executed_copies_of_the_current_run(tmp_path, monkeypatch):
    names = claims.UPSTREAM["C12"]["records"]
    for track in claims.FRAMEWORKS:
        _lesson_with(tmp_path, "07_distributed", track, {names["lines"]: 5, names["matches"]: 3e-8})
    run = tmp_path / "build" / "run"
    _lesson_with(run, "07_distributed", "pytorch", {names["lines"]: 2, names["matches"]: 3e-8})
    _lesson_with(run, "07_distributed", "tensorflow", {names["lines"]: 8, names["matches"]: 3e-8})
    monkeypatch.setenv("COURSE_WORKDIR", str(run / "work"))
    figures = claims.upstream("C12", root=tmp_path)
    assert figures["source"].startswith("the executed copies of this course run")
    assert figures["pytorch"][names["lines"]] == 2
    scripts = {"pytorch": routes(ddp=3), "tensorflow": routes(loop=9)}
    assert claims.upstream_verdict("C12", figures, scripts).outcome == SUPPORTED


def test_upstream_without_records_is_not_measured_yet(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_WORKDIR", raising=False)
    (tmp_path / "notebooks").mkdir()
    for claim in ("C10", "C12"):
        figures = claims.upstream(claim, root=tmp_path)
        assert figures["source"].startswith("none: no ")
        assert claims.upstream_verdict(claim, figures).outcome == NOT_MEASURED


# ---------------------------------------------------------------- the harness's processes


def _children():
    """Return the command lines of this process's children that run a claims worker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and "claims_worker" in cmd:
            found.append(cmd)
    return found


@pytest.fixture(scope="module")
def plan():
    return claims.settings(quick=True, threads=1)


def test_a_worker_runs_its_tasks_in_a_fresh_process(plan):
    pytest.importorskip("torch")
    from course_utils import claims_worker

    result = claims_worker.run("pytorch", plan, [["demo", "c8"]])
    assert result["framework"] == "pytorch" and result["setup"]["threads"] == 1
    assert result["demos"]["c8"]["changed"] == 2 and result["demos"]["c8"]["same_losses"]
    assert [task for task, _ in result["seconds"]] == ["demo c8"]


def test_a_failing_worker_says_why_and_leaves_no_process(plan):
    pytest.importorskip("torch")
    from course_utils import claims_worker

    with pytest.raises(claims_worker.WorkerFailed, match="unknown task"):
        claims_worker.run("pytorch", plan, [["no such task"]])
    with pytest.raises(claims_worker.WorkerFailed, match="ran past"):
        claims_worker.run("pytorch", plan, [["demo", "c8"]], timeout=0.5)
    assert _children() == []


def test_a_worker_started_ahead_imports_then_waits_for_its_turn(plan):
    pytest.importorskip("torch")
    from course_utils import claims_worker

    worker = claims_worker.Worker("pytorch", plan, [["demo", "c8"]], ahead=True)
    worker.ready(timeout=120)
    time.sleep(1.0)
    assert worker.proc.poll() is None and worker.lines.empty(), "it waits, and runs nothing"
    worker.go()
    result = worker.result(timeout=120)
    assert result["demos"]["c8"]["changed"] == 2
    assert result["setup"]["import_s"] > 0 and len(result["setup"]["load"]) == 2
    idle = claims_worker.Worker("pytorch", plan, [["demo", "c8"]], ahead=True)
    idle.ready(timeout=120)
    idle.stop()  # never given its turn: it ends without running a task
    assert idle.proc.returncode == 0 and _children() == []


def test_the_schedule_measures_memory_first_then_times_in_alternating_fresh_processes(plan):
    from course_utils import claims_worker

    stages = claims_worker.schedule(plan)
    first, *timing_stages = stages
    # nothing timed in the first stage: the main processes and the other mode's memory, together
    assert [(fw, role) for fw, role, _ in first] == [
        ("pytorch", "main"),
        ("tensorflow", "main"),
        ("tensorflow", "memory"),
    ]
    for _, _, work in first:
        assert work[0][0] == "memory"
    assert [w for _, role, w in first if role == "memory"] == [[["memory", "eager"]]]
    assert all(len(stage) == 1 for stage in timing_stages)  # timing processes run alone
    assert all(stage[0][1].startswith("timing") for stage in timing_stages)
    order = [stage[0][0] for stage in timing_stages]
    assert plan["rounds"] == claims.MIN_PROCESSES == 3
    assert order == ["pytorch", "tensorflow", "tensorflow", "pytorch", "pytorch", "tensorflow"]
    assert claims_worker.timing_order(5)[-2:] == ["pytorch", "tensorflow"]
    assert len(claims_worker.timing_order(5)) == 10
    timed = timing_stages[0][0][2]
    assert ["timing", "cnn", "compiled"] in timed and timed[-1] == ["ops", "cpu"]
    full = claims.settings(quick=False, threads=1)
    assert full["rounds"] == 5
    assert ["memory", "compiled"] in [w[0] for _, _, w in claims_worker.schedule(full)[0]]


def test_a_shared_measurement_is_made_once_and_served_to_the_second_notebook(
    plan, monkeypatch, tmp_path, capsys
):
    """COURSE_CLAIMS_SHARE: the twins of one run get one measurement; without it each measures."""
    from course_utils import claims_worker

    made = []

    def fake_measure_now(plan, progress="lines", timeout=1200):
        made.append(plan)
        return {"pytorch": {"n": len(made)}, "tensorflow": {"n": len(made)}}

    monkeypatch.setattr(claims_worker, "measure_now", fake_measure_now)
    monkeypatch.delenv(claims_worker.SHARE, raising=False)
    assert claims_worker.measure(plan)["pytorch"]["n"] == 1
    assert claims_worker.measure(plan)["pytorch"]["n"] == 2  # no folder: measured every time
    monkeypatch.setenv(claims_worker.SHARE, str(tmp_path / "share"))
    capsys.readouterr()
    first = claims_worker.measure(plan)
    second = claims_worker.measure(plan)
    assert first == second == {"pytorch": {"n": 3}, "tensorflow": {"n": 3}} and len(made) == 3
    assert "The other notebook of this run measured the same plan" in capsys.readouterr().out
    other = {**plan, "seed": plan["seed"] + 1}  # another plan is measured anew
    assert claims_worker.measure(other)["pytorch"]["n"] == 4


def test_merge_keeps_one_figure_per_timing_process_and_every_load_reading():
    from course_utils import claims_worker

    results = {}
    main = {"setup": {}, "memory": {"eager": {}}, "demos": {}, "seconds": [], "accuracy": {}}
    claims_worker.merge(results, "pytorch", "main", main)
    for i, load in enumerate((0.1, 1.6)):
        got = {
            "seconds": [["timing small eager", 1.0]],
            "timing": {"small": {"eager": {"first_s": 0.5 + i, "times": [3.0, 1.0, 2.0]}}},
            "ops": {"cpu": {"sum": {"times": [4.0, 5.0, 6.0]}}},
            "setup": {"load": [load, 0.0], "load_kind": "cpu use", "cpus": 2},
        }
        claims_worker.merge(results, "pytorch", f"timing {i + 1}", got)
        claims_worker.add_load(results, "pytorch", f"timing {i + 1}", "after", 0.0, "cpu use")
    mine = results["pytorch"]
    assert mine["timing"]["small"]["eager"] == {"first_s": [0.5, 1.5], "times": [2.0, 2.0]}
    assert mine["ops"]["cpu"]["sum"] == {"times": [5.0, 5.0]}
    assert len(mine["loads"]) == 4 and mine["processes"]["timing"] == 2
    cpus = os.cpu_count()
    busy = claims.machine_busy(results)
    if 1.6 > claims.BUSY_SHARE["cpu use"] * cpus:
        assert f"other programs used 1.6 of {cpus} CPUs before the pytorch timing 2 process" in busy


def test_memory_figures_come_from_measure_memory():
    from course_utils import claims_worker

    blocks = []
    figures = claims_worker.memory_figures(lambda: blocks.append(bytearray(4 << 20)), 3, "cpu", 7)
    assert figures["parameters"] == 7 and figures["steps"] == 3 and len(blocks) == 3
    assert figures["accelerator_peak"] is None
    assert figures["train_peak"] >= figures["runtime"] > 0
    assert figures["train_delta"] == pytest.approx(figures["train_peak"] - figures["runtime"])
    assert figures["steady_delta"] < figures["train_delta"]  # above the process after step 1
    with pytest.raises(ValueError, match="at least 2"):
        claims_worker.memory_figures(lambda: None, 1, "cpu", 0)


# ---------------------------------------------------------------- the stored records of both tracks


def records(track, set_name="notebooks"):
    return read_records(ROOT / set_name / CONCEPT / f"{track}.ipynb")


@pytest.fixture(scope="module")
def stored():
    return {track: by_name(records(track)) for track in claims.FRAMEWORKS}


DETERMINISTIC = [
    "large_model_parameters",
    "c1_facts",
    "c2_counts",
    "c8_lines_changed",
    "c11_facts",
    "verdict_C1",
    "verdict_C2",
    "verdict_C8",
    "verdict_C11",
    "verdict_C13",
]


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_both_tracks_record_the_same_demonstrations_and_verdicts(stored, name):
    assert stored["pytorch"][name] == stored["tensorflow"][name]


def test_the_demonstrations_say_what_the_lesson_says(stored):
    facts = stored["pytorch"]
    assert facts["c1_facts"]["pytorch"]["graph_follows_data"] is True
    assert facts["c1_facts"]["tensorflow"]["function_traces"] == 1
    assert facts["c2_counts"]["tensorflow"]["graph"] == [0, 0]
    assert facts["c2_counts"]["pytorch"]["eager"] == [3, 3]
    assert facts["c8_lines_changed"]["pytorch"] <= claims.MINIMAL_LINES
    assert facts["c11_facts"]["pytorch"]["deprecated"] is True
    assert facts["verdict_C13"] == NOT_MEASURABLE


def test_accuracies_agree_across_tracks_and_frameworks(stored):
    pt, tf = stored["pytorch"]["c7_test_accuracy"], stored["tensorflow"]["c7_test_accuracy"]
    one = 1 / 270
    for fw in claims.FRAMEWORKS:
        assert len(pt[fw]) == len(tf[fw]) >= 2
        assert all(abs(a - b) <= 2 * one for a, b in zip(pt[fw], tf[fw], strict=True))
        assert all(0.5 < a <= 1 for a in pt[fw])  # well above chance (0.1)
    gap = abs(statistics.mean(pt["pytorch"]) - statistics.mean(pt["tensorflow"]))
    assert gap <= max(statistics.stdev(pt["pytorch"]), 2 * one)


@pytest.mark.parametrize("track", claims.FRAMEWORKS)
def test_each_track_records_the_whole_table_and_its_own_figures(stored, track):
    table = stored[track]["claims"]
    assert [v["claim"] for v in table["verdicts"]] == list(claims.CLAIMS)
    assert all(v["outcome"] in claims.OUTCOMES for v in table["verdicts"])
    assert "torch" in table["machine"] and "tensorflow" in table["machine"]
    assert set(table["setup"]) == set(claims.FRAMEWORKS)
    assert set(claims.PLOTTED) <= set(table["plots"])
    units = {r["name"]: r["unit"] for r in records(track)}
    for name in ("small_step_s", "large_step_s", "op_matmul_s"):
        assert units[name] == "s" and stored[track][name] > 0
    for name in ("runtime_rss", "train_peak_rss"):
        assert units[name] == "MiB" and stored[track][name] > 10


# ---------------------------------------------------------------- checkers


def _stub(*args):
    raise NotImplementedError("Exercise: write your code here")


def spread_right(a, b):
    def q(t):
        if len(t) < 2:
            return t[0], t[0]
        q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive")
        return q1, q3

    (a1, a3), (b1, b3) = q(a), q(b)
    return "a faster" if a3 < b1 else "b faster" if b3 < a1 else "inconclusive"


def spread_by_medians(a, b):  # wrong by construction: ignores the spread
    return "a faster" if statistics.median(a) < statistics.median(b) else "b faster"


def accuracy_right(a, b, n):
    if len(a) < 2:
        return None
    return abs(statistics.mean(a) - statistics.mean(b)) <= max(
        statistics.stdev(a), statistics.stdev(b), 1 / n
    )


def accuracy_without_floor(a, b, n):  # wrong by construction: no one-example floor
    if len(a) < 2:
        return None
    return abs(statistics.mean(a) - statistics.mean(b)) <= max(
        statistics.stdev(a), statistics.stdev(b)
    )


@pytest.mark.parametrize("track", claims.FRAMEWORKS)
@pytest.mark.parametrize(
    "name, right, wrong",
    [
        ("clear_difference", spread_right, spread_by_medians),
        ("same_accuracy", accuracy_right, accuracy_without_floor),
    ],
)
def test_shared_checkers(track, name, right, wrong):
    exercise = f"{CONCEPT}.{track}.{name}"
    assert check(exercise, right).status == "passed"
    assert check(exercise, wrong).status == "wrong"
    assert check(exercise, _stub).status == "not solved"
    assert check(exercise, ...).status == "not solved"


def test_capture_outputs_checker():
    torch = pytest.importorskip("torch")

    def right(model, x):
        outputs, handles = [], []
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                handles.append(
                    m.register_forward_hook(lambda mod, i, o: outputs.append(o.detach()))
                )
        try:
            model(x)
        finally:
            for h in handles:
                h.remove()
        return outputs

    def keeps_hooks(model, x):  # wrong by construction: the hooks stay registered
        outputs = []
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.register_forward_hook(lambda mod, i, o: outputs.append(o.detach()))
        model(x)
        return outputs

    def inputs_instead(model, x):  # wrong by construction: the layers' inputs
        outputs = []
        handles = [
            m.register_forward_hook(lambda mod, i, o: outputs.append(i[0].detach()))
            for m in model.modules()
            if isinstance(m, torch.nn.Linear)
        ]
        model(x)
        for h in handles:
            h.remove()
        return outputs

    exercise = f"{CONCEPT}.pytorch.capture_outputs"
    assert check(exercise, right).status == "passed"
    assert check(exercise, keeps_hooks).status == "wrong"
    assert check(exercise, inputs_instead).status == "wrong"
    assert check(exercise, _stub).status == "not solved"


def test_call_eagerly_checker():
    tf = pytest.importorskip("tensorflow")

    def right(fn, *args):
        before = tf.config.functions_run_eagerly()
        tf.config.run_functions_eagerly(True)
        try:
            return fn(*args)
        finally:
            tf.config.run_functions_eagerly(before)

    def never_restores(fn, *args):  # wrong by construction: leaves the global switch on
        tf.config.run_functions_eagerly(True)
        return fn(*args)

    def as_a_graph(fn, *args):  # wrong by construction: the function stays a graph
        return fn(*args)

    exercise = f"{CONCEPT}.tensorflow.call_eagerly"
    assert check(exercise, right).status == "passed"
    assert check(exercise, never_restores).status == "wrong"
    assert check(exercise, as_a_graph).status == "wrong"
    assert check(exercise, _stub).status == "not solved"
    assert tf.config.functions_run_eagerly() is False


# ---------------------------------------------------------------- the run report


def test_the_run_report_starts_with_the_claims_table(tmp_path):
    outcomes = []
    for track in claims.FRAMEWORKS:
        path = ROOT / "notebooks" / CONCEPT / f"{track}.ipynb"
        entry = notebooks.Entry("notebooks", CONCEPT, track, path)
        outcomes.append(runner.Outcome(entry, path, 1.0, True, None, records(track)))
    report.write(outcomes, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Claims: verdicts on this machine") < md.index("- created:")
    assert md.index("- machine:") < md.index("## Notebooks")
    for claim in claims.CLAIMS:
        assert f"| {claim} {claims.CLAIMS[claim].title} |" in md
    for claim in claims.PLOTTED:
        assert (tmp_path / f"claims_{claim}.png").stat().st_size > 1000
        assert f"(claims_{claim}.png)" in md
    page = (tmp_path / "report.html").read_text()
    assert page.index("Claims: verdicts on this machine") < page.index("<h2>Notebooks</h2>")
    assert "| 09_claims_lab | claims |  | {4 entries} | {4 entries} |" in md  # not the whole dict


def test_a_run_without_the_claims_lab_has_no_claims_table(tmp_path):
    assert claims.report_section([], tmp_path) == ([], "")


# ---------------------------------------------------------------- a busy machine


def loaded(*values, cpus=2, kind="load average"):
    """Results whose timing processes read ``values`` (one reading each, alternating
    frameworks)."""
    found = {fw: {"loads": []} for fw in claims.FRAMEWORKS}
    for i, value in enumerate(values):
        fw = claims.FRAMEWORKS[i % 2]
        found[fw]["loads"].append(
            {
                "process": f"the {fw} timing {i // 2 + 1} process",
                "when": "before",
                "value": value,
                "kind": kind,
                "cpus": cpus,
            }
        )
    return found


def test_a_busy_machine_is_named_from_the_load_average():
    assert claims.machine_busy(loaded(0.4, 0.3)) is None
    assert claims.machine_busy(loaded(1.0, 1.0)) is None  # at the limit: half the CPUs
    busy = claims.machine_busy(loaded(7.8, 8.0))
    assert "1-minute load average 8.0 on 2 CPUs before the tensorflow timing 1 process" in busy
    assert "above 1" in busy
    assert claims.machine_busy(loaded(3.0, cpus=8)) is None
    assert claims.machine_busy({fw: {"loads": []} for fw in claims.FRAMEWORKS}) is None


def test_a_busy_machine_keeps_the_highest_reading_and_names_it():
    assert claims.machine_busy(loaded(0.05, 0.1, kind="cpu use")) is None  # an idle machine
    assert claims.machine_busy(loaded(0.5, kind="cpu use")) is None  # at the limit
    # one busy moment among quiet ones is enough, and it is the one named
    busy = claims.machine_busy(loaded(0.1, 0.0, 0.2, 1.9, 0.1, kind="cpu use"))
    assert (
        "highest reading: other programs used 1.9 of 2 CPUs before the tensorflow timing 2" in busy
    )
    assert claims.machine_busy(loaded(1.6, kind="cpu use", cpus=8)) is None


def test_the_worker_measures_other_programs_cpu_use(monkeypatch):
    from course_utils import claims_worker

    ticks = iter([(100, 1000), (150, 1200)])  # 50 of 200 ticks busy: a quarter of the CPUs
    monkeypatch.setattr(claims_worker, "_cpu_times", lambda: next(ticks))
    monkeypatch.setattr(claims_worker.time, "sleep", lambda s: None)
    monkeypatch.setattr(claims_worker.os, "cpu_count", lambda: 4)
    assert claims_worker.machine_load() == (1.0, "cpu use")
    monkeypatch.setattr(claims_worker, "_cpu_times", lambda: None)
    monkeypatch.setattr(claims_worker.os, "getloadavg", lambda: (2.5, 2.0, 1.0), raising=False)
    assert claims_worker.machine_load() == (2.5, "load average")


def test_timing_verdicts_on_a_busy_machine_are_inconclusive_and_say_why():
    busy = claims.machine_busy(loaded(7.8))
    pt, tf = {"eager": SLOW}, {"eager": timing(0.01, 0.01), "graph": FAST}
    assert claims.c3_small_models(pt, tf).outcome == CONTRADICTED
    verdict = claims.c3_small_models(pt, tf, busy=busy)
    assert verdict.outcome == INCONCLUSIVE
    assert busy in verdict.reason and "The figures alone say TensorFlow graph" in verdict.reason
    cpu_pt, cpu_tf = ops(matmul=2.0), ops(matmul=1.0)
    assert claims.c9_speed(cpu_pt, cpu_tf).outcome == SUPPORTED
    assert claims.c9_speed(cpu_pt, cpu_tf, busy=busy).outcome == INCONCLUSIVE
    large = {"large": PT_SLOW, "cnn": PT_SLOW}, {"large": TF_FAST, "cnn": TF_FAST}
    assert claims.c4_large_models(*large, busy=busy).outcome == INCONCLUSIVE
    same = {"eager": timing(0.0, 0.001, 0.0004)}, {"graph": timing(0.0, 0.00105, 0.0004)}
    assert claims.c3_small_models(*same, busy=busy).reason.endswith("overlap.")


def test_setup_line_names_version_device_threads_kernels_and_load():
    setup = {"version": "2.21.0", "keras": "3.15.1", "device": "/CPU:0", "threads": 2}
    setup.update(interop_threads=2, kernels="Eigen", load=[1.25, None])
    line = claims.setup_line("tensorflow", setup)
    assert line == (
        "TensorFlow 2.21.0 on /CPU:0: 2 threads (2 inter-op), Eigen, Keras 3.15.1; load average 1.2"
    )
    setup.update(load=[0.04, 0.12], load_kind="cpu use")
    assert claims.setup_line("tensorflow", setup).endswith("; others' CPU use 0.0 -> 0.1")


def test_the_hub_count_asks_the_public_api_only_when_called(monkeypatch):
    import io
    import json
    import urllib.request

    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(json.dumps([{"tags": ["pytorch"]}, {"tags": ["tf", "pytorch"]}]).encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    counts = claims.fetch_hub_sample(limit=2)
    assert asked == [f"{claims.HUB_API}?sort=downloads&direction=-1&limit=2"]
    assert (counts["pytorch_only"], counts["both"], counts["total"]) == (1, 1, 2)
    assert counts["sample"] == "the Hub's 2 most-downloaded models"


# ---------------------------------------------------------------- stability: repeated runs


def test_repeat_prints_every_claims_verdicts_and_flags_a_flip(monkeypatch, capsys):
    from course_utils import claims_worker

    fast = {m: timing(0.0, 0.001, 0.0001) for m in ("eager", "compiled")}
    slow = {m: timing(0.0, 0.004, 0.0001) for m in ("eager", "graph", "xla")}
    runs = []

    def fake_measure(plan, progress=False):
        results = {fw: fake_result(fw) for fw in claims.FRAMEWORKS}
        if len(runs) == 1:  # the second run: PyTorch faster on the small model
            results["pytorch"]["timing"]["small"] = fast
            results["tensorflow"]["timing"]["small"] = slow
        elif len(runs) == 2:  # the third: TensorFlow faster
            results["pytorch"]["timing"]["small"] = {"eager": timing(0.0, 0.004, 0.0001)}
            results["tensorflow"]["timing"]["small"] = {"graph": timing(0.0, 0.001, 0.0001)}
        runs.append(plan)
        return results

    monkeypatch.setattr(claims_worker, "measure_now", fake_measure)
    none = {"source": "none", "pytorch": None, "tensorflow": None}
    seen = claims.repeat(3, upstream_figures={"C10": none, "C12": none})
    out = capsys.readouterr().out
    assert len(runs) == 3 and runs[0]["quick"] and runs[0]["rounds"] == claims.MIN_PROCESSES
    assert seen["C3"] == [INCONCLUSIVE, SUPPORTED, CONTRADICTED]
    assert "C3 small models train faster in PyTorch" in out and "<- FLIPS" in out
    assert out.count("the machine was not busy while timing") == 3
    assert "flip between supported and contradicted: C3" in out


def test_the_cli_has_a_claims_command():
    from course_tools import cli

    args = cli._parser().parse_args(["claims", "--repeat", "2"])
    assert (args.command, args.repeat, args.full) == ("claims", 2, False)
    assert cli.COMMANDS["claims"] is cli.cmd_claims

"""The claims lab (09_claims_lab): the thirteen popular claims, the rules that decide them, and
verdict functions that compute a verdict from measured figures.

Nothing here imports a framework. The measurements come from the harness
(:mod:`course_utils.claims_worker`), which runs each framework's side of the experiments
(:mod:`course_utils.claims_torch`, :mod:`course_utils.claims_tf`) in fresh processes and returns
one JSON-ready dict per framework::

    {"framework": "pytorch" | "tensorflow",
     "setup": {"version", "threads", "device", ...},
     "memory": {mode: MEMORY},                                   # C5, C6
     "timing": {"small" | "large" | "cnn": {mode: TIMING}},      # C3, C4 (and C9's step row)
     "accuracy": {"seeds", "test_accuracy", "n_test", "epochs"},  # C7
     "ops": {"cpu": {op: {"times"}}, "gpu": {op: {"times"}}},     # C9
     "demos": {"c1", "c2", "c8", "c11", "c12"},                   # C1, C2, C8, C11, C12
     "loads": [{"process", "when", "value", "kind", "cpus"}],     # the busy check
     "processes": {"timing": how many timing processes}}

    MEMORY = {"runtime", "first_step_delta", "steady_delta", "train_peak", "train_delta"}  (MiB),
             plus "accelerator_peak" (MiB or None), "peak_was_reset", "parameters", "steps"
    TIMING = {"first_s": [each timing process's first call], "times": [each timing process's
              median steady step]}; an operation's "times" likewise hold one median per process.

The timing rule (:func:`decide_timing`) compares those per-process figures: the spread is the
range between processes, and a verdict needs the ranges apart and :data:`MIN_EFFECT`.

Modes: PyTorch ``"eager"`` and ``"compiled"`` (``torch.compile``); TensorFlow ``"eager"``,
``"graph"`` (``tf.function``) and ``"xla"`` (``tf.function(jit_compile=True)``).
:data:`DEFAULT_MODE` is how each framework trains when nothing is asked for (a PyTorch loop runs
eagerly; Keras ``fit`` runs a ``tf.function``).

Every verdict function returns a :class:`Verdict`: an outcome (:data:`OUTCOMES`), the reason with
the numbers, and the rule it applied. C10 and C12 are decided from the figures that the
deployment (06) and distributed (07) lessons record; :data:`UPSTREAM` names those records and
:func:`upstream` reads them.

The package is split by what each part does; every name is re-exported here, so
``claims.<name>`` works whichever module holds it:

- :mod:`.catalogue`: the claims, outcomes, frameworks and modes, thresholds and rule texts;
- :mod:`.experiments`: the plan, inputs and demonstration helpers both framework sides share;
- :mod:`.rules`: the timing rule, the busy-machine check and the memory comparison;
- :mod:`.verdicts`: :class:`Verdict` and one verdict function per claim;
- :mod:`.assessment`: the whole table of one run, C10/C12's figures from other lessons, C13's
  count of a model hub;
- :mod:`.stability`: :func:`repeat`, the lab run several times;
- :mod:`.tables`, :mod:`.charts`: the text tables and plots a notebook shows;
- :mod:`.report`: the record a notebook stores and the run report's claims section.
"""

from .assessment import (
    HUB_API,
    assess,
    c4_timings,
    cpu_rows,
    fetch_hub_sample,
    hub_counts,
    upstream,
    upstream_verdict,
)
from .catalogue import (
    BUSY_RULE,
    C5_QUOTED,
    C7_ROUNDING_IMAGES,
    C13_QUOTED,
    CLAIMS,
    CONTRADICTED,
    DEFAULT_MODE,
    DISTRIBUTED_ATOL,
    DISTRIBUTED_MARGIN_LINES,
    FAR_MORE_RATIO,
    FRAMEWORKS,
    GRAPH_MODES,
    INCONCLUSIVE,
    MANY_LINES,
    MEMORY_ATOL_MIB,
    MEMORY_RTOL,
    MIN_EFFECT,
    MIN_HUB_SAMPLE,
    MIN_PROCESSES,
    MINIMAL_LINES,
    MODES,
    NAMES,
    NEUTRAL_TARGETS,
    NOT_MEASURABLE,
    NOT_MEASURED,
    OUTCOMES,
    PARTLY,
    RULES,
    RUN_STEPS,
    SUPPORTED,
    TIMING_RULE,
    UPSTREAM,
    Claim,
)
from .charts import (
    COLOURS,
    PLOTTED,
    plot,
    plot_data,
)
from .experiments import (
    ACCURACY_SIZE,
    DEBUG_BIAS,
    DEBUG_H,
    DEBUG_INPUT,
    DEBUG_KERNEL,
    DEBUG_SUM,
    OP_LABELS,
    OP_SHAPES,
    PROMPT,
    changed_lines,
    cnn_batch,
    cnn_spec,
    code_lines,
    debug_session,
    debug_weights,
    graph_size,
    mlp_spec,
    model_spec,
    op_inputs,
    parameter_count,
    pdb_answers,
    quiet_native_stderr,
    script_counts,
    script_lines,
    scripted_breakpoints,
    settings,
)
from .report import (
    as_record,
    report_section,
)
from .rules import (
    BUSY_SHARE,
    Decision,
    decide_timing,
    fmt_time,
    machine_busy,
    memory_difference,
    op_comparison,
    quartiles,
    run_totals,
    spread,
)
from .stability import (
    repeat,
)
from .tables import (
    accuracy_table,
    describe,
    format_table,
    memory_table,
    ops_table,
    outcome_counts,
    setup_line,
    source,
    summary_table,
    timing_table,
)
from .verdicts import (
    C4_MODELS,
    Verdict,
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
    deployment_reached,
    seed_to_seed_changes,
)

__all__ = [
    "ACCURACY_SIZE",
    "BUSY_RULE",
    "BUSY_SHARE",
    "C13_QUOTED",
    "C4_MODELS",
    "C5_QUOTED",
    "C7_ROUNDING_IMAGES",
    "CLAIMS",
    "COLOURS",
    "CONTRADICTED",
    "Claim",
    "DEBUG_BIAS",
    "DEBUG_H",
    "DEBUG_INPUT",
    "DEBUG_KERNEL",
    "DEBUG_SUM",
    "DEFAULT_MODE",
    "DISTRIBUTED_ATOL",
    "DISTRIBUTED_MARGIN_LINES",
    "Decision",
    "FAR_MORE_RATIO",
    "FRAMEWORKS",
    "GRAPH_MODES",
    "HUB_API",
    "INCONCLUSIVE",
    "MANY_LINES",
    "MEMORY_ATOL_MIB",
    "MEMORY_RTOL",
    "MINIMAL_LINES",
    "MIN_EFFECT",
    "MIN_HUB_SAMPLE",
    "MIN_PROCESSES",
    "MODES",
    "NAMES",
    "NEUTRAL_TARGETS",
    "NOT_MEASURABLE",
    "NOT_MEASURED",
    "OP_LABELS",
    "OP_SHAPES",
    "OUTCOMES",
    "PARTLY",
    "PLOTTED",
    "PROMPT",
    "RULES",
    "RUN_STEPS",
    "SUPPORTED",
    "TIMING_RULE",
    "UPSTREAM",
    "Verdict",
    "accuracy_table",
    "as_record",
    "assess",
    "c10_deployment",
    "c11_torchscript",
    "c12_distributed",
    "c13_hub",
    "c1_define_by_run",
    "c2_debugging",
    "c3_small_models",
    "c4_large_models",
    "c4_timings",
    "c5_training_memory",
    "c6_graph_memory",
    "c7_accuracy",
    "c8_gpu_code",
    "c9_speed",
    "changed_lines",
    "cnn_batch",
    "cnn_spec",
    "code_lines",
    "cpu_rows",
    "debug_session",
    "debug_weights",
    "decide_timing",
    "deployment_reached",
    "describe",
    "fetch_hub_sample",
    "fmt_time",
    "format_table",
    "graph_size",
    "hub_counts",
    "machine_busy",
    "memory_difference",
    "memory_table",
    "mlp_spec",
    "model_spec",
    "op_comparison",
    "op_inputs",
    "ops_table",
    "outcome_counts",
    "parameter_count",
    "pdb_answers",
    "plot",
    "plot_data",
    "quartiles",
    "quiet_native_stderr",
    "repeat",
    "report_section",
    "run_totals",
    "script_counts",
    "script_lines",
    "scripted_breakpoints",
    "seed_to_seed_changes",
    "settings",
    "setup_line",
    "source",
    "spread",
    "summary_table",
    "timing_table",
    "upstream",
    "upstream_verdict",
]

"""The claims lab's catalogue: the thirteen claims as articles write them, the outcomes a
verdict can have, the frameworks and their modes, and every threshold and rule text the verdicts
apply (:data:`RULES`), with what a CPU-only machine leaves out of each claim (:data:`PARTLY`) and
the records read from other lessons (:data:`UPSTREAM`). Plain data: nothing here measures or
decides.
"""

from dataclasses import dataclass

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_MEASURABLE = "not measurable here"
NOT_MEASURED = "not measured yet"
OUTCOMES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED)
FRAMEWORKS = ("pytorch", "tensorflow")
NAMES = {"pytorch": "PyTorch", "tensorflow": "TensorFlow"}
MODES = {"pytorch": ("eager", "compiled"), "tensorflow": ("eager", "graph", "xla")}
DEFAULT_MODE = {"pytorch": "eager", "tensorflow": "graph"}
GRAPH_MODES = {"pytorch": ("compiled",), "tensorflow": ("graph", "xla")}


# ---------------------------------------------------------------- the claims


@dataclass(frozen=True)
class Claim:
    """One claim: ``text`` as articles write it, ``why`` it might be true, ``title`` for tables."""

    id: str
    title: str
    text: str
    why: str


CLAIMS = {
    c.id: c
    for c in (
        Claim(
            "C1",
            "define-by-run vs static graph",
            "PyTorch builds the graph as the code runs (define-by-run); TensorFlow historically "
            "defined a static graph first, and TF 2.x eager execution closed most of that gap",
            "PyTorch records each operation as Python executes it; TensorFlow 1.x built a graph "
            "and ran it in a Session; TensorFlow 2.x runs eagerly unless asked for a graph.",
        ),
        Claim(
            "C2",
            "debugging inside the model",
            "Dynamic graphs make debugging easier: ordinary Python debugging and printing work "
            "inside the model",
            "When the model runs as Python, print and pdb see real tensors with values; a traced "
            "graph runs without Python, so they see placeholders or nothing.",
        ),
        Claim(
            "C3",
            "small models train faster in PyTorch",
            "For small models PyTorch can train faster, because eager execution has less overhead "
            "than tracing/compiling",
            "A small step is mostly fixed overhead; tracing or compiling costs time up front that "
            "a short run may never earn back.",
        ),
        Claim(
            "C4",
            "large models: tf.function and XLA are faster",
            "For large models, TensorFlow's graph mode (tf.function) and XLA give better speed "
            "and GPU use",
            "A whole-step graph lets the runtime fuse operations and plan memory; XLA compiles "
            "the step into fused kernels.",
        ),
        Claim(
            "C5",
            "TensorFlow needs less training memory",
            "TensorFlow uses less memory in training; one widely quoted benchmark: about 1.7 GB "
            "for TensorFlow vs about 3.5 GB for PyTorch on the same model",
            "A planned graph can reuse buffers; PyTorch's caching allocator keeps freed blocks.",
        ),
        Claim(
            "C6",
            "graphs and fragmentation explain it",
            "Static-graph optimisation and less fragmentation explain that memory difference",
            "If graph planning saves memory, a framework's graph mode should train in less "
            "memory than its own eager mode.",
        ),
        Claim(
            "C7",
            "same accuracy in both",
            "Same architecture, data and hyperparameters give practically the same accuracy in "
            "both",
            "The mathematics is the same; only initialisation, data order and rounding differ, "
            "and the course removes the first two.",
        ),
        Claim(
            "C8",
            "few code changes to use a GPU",
            "PyTorch offloads to a GPU with minimal code changes",
            "Moving a model and its batches with .to(device) is all a PyTorch loop needs.",
        ),
        Claim(
            "C9",
            "CPU and GPU speed",
            "PyTorch may be faster on GPUs, TensorFlow sometimes faster on CPUs",
            "The frameworks call different kernel libraries (oneDNN/MKL, Eigen, cuDNN) whose "
            "speed differs by operation and machine.",
        ),
        Claim(
            "C10",
            "broader deployment for TensorFlow",
            "TensorFlow's deployment story (SavedModel/Serving, Lite, JS) is broader; PyTorch "
            "has TorchScript and now torch.export",
            "TensorFlow has long shipped Serving, Lite and TF.js; PyTorch's export and edge "
            "routes (torch.export, ExecuTorch) are younger.",
        ),
        Claim(
            "C11",
            "TorchScript bridges eager and graph",
            "TorchScript gives an easy transition between eager mode and graph mode",
            "torch.jit.script compiles an eager model's Python into a graph without rewriting "
            "it, as long as the code stays in TorchScript's subset.",
        ),
        Claim(
            "C12",
            "distributed training",
            "TensorFlow is built for distributed training across CPUs, GPUs and TPUs; multi-GPU "
            "is generally considered easier to set up in PyTorch",
            "tf.distribute strategies cover every device kind; DistributedDataParallel is a thin "
            "wrapper around an ordinary training loop.",
        ),
        Claim(
            "C13",
            "more pretrained models for PyTorch",
            "Far more pretrained models are published for PyTorch than for TensorFlow (one "
            "count: ~85% of a major model hub's models PyTorch-only, ~8% TensorFlow-only)",
            "Most research code is written in PyTorch, and hubs mirror what authors publish.",
        ),
    )
}

# The figure C13 quotes, as a claim (shares of a hub's models).
C13_QUOTED = {"pytorch_only": 0.85, "tensorflow_only": 0.08}
# The figures C5 quotes, in GB.
C5_QUOTED = {"tensorflow": 1.7, "pytorch": 3.5}


# ---------------------------------------------------------------- the rules

RUN_STEPS = 500  # C3: a short training run (a few epochs of a small data set), first call included
MIN_EFFECT = (
    0.10  # C3, C4, C9: a timing difference counts only when the slower median is >= 10 % slower
)
MIN_PROCESSES = 3  # C3, C4, C9: per framework, at least this many fresh timing processes
MEMORY_RTOL, MEMORY_ATOL_MIB = 0.10, 8.0  # C5, C6: a memory difference must exceed both
C7_ROUNDING_IMAGES = 2  # C7: a per-seed difference this small is rounding on a decision boundary
MINIMAL_LINES, MANY_LINES = 5, 10  # C8: "minimal code changes" is at most 5 changed lines
FAR_MORE_RATIO, MIN_HUB_SAMPLE = 5.0, 100  # C13: "far more" is at least 5 times as many
DISTRIBUTED_MARGIN_LINES = 3  # C12: "easier" needs at least 3 fewer lines in the whole script
DISTRIBUTED_ATOL = 1e-5  # C12: 07's parity tolerance, distributed vs one process (max |diff|)
# C10: targets reached through a framework-neutral route (an ONNX file, ONNX Runtime Web, the
# course's own HTTP server): whichever framework reached them, both can.
NEUTRAL_TARGETS = ("ONNX", "browser", "HTTP server")

TIMING_RULE = (
    f"each timing is taken in at least {MIN_PROCESSES} fresh processes per framework, PyTorch and "
    "TensorFlow alternating; a framework is clearly faster only when the ranges of its "
    "per-process figures and the other's do not overlap AND the slower median is at least "
    f"{MIN_EFFECT:.0%} slower; otherwise inconclusive, with the reason"
)
BUSY_RULE = (
    "; inconclusive whenever other programs kept the machine busy around any timing process (the "
    "highest reading counts: more than a quarter of the CPUs' time in use, or a 1-minute load "
    "average above half the CPUs where that is all the system says)"
)
RULES = {
    "C1": "supported when PyTorch's recorded graph follows the data, TensorFlow runs eagerly by "
    "default with its recorded operations following the data too, and tf.function still builds "
    "one static graph holding the loop",
    "C2": "supported when print and a breakpoint see values on every call in both frameworks' "
    "eager mode, and a graph mode hides them; contradicted when neither eager mode shows them, "
    "or no graph mode hides them",
    "C3": f"small model, a run of {RUN_STEPS} steps (first call + {RUN_STEPS - 1} steady steps), "
    f"each framework in its fastest mode; {TIMING_RULE}" + BUSY_RULE,
    "C4": "steady-state step on two models, the large MLP and a small CNN (where fusing "
    "convolutions, activations and pooling can pay): TensorFlow's faster of graph/XLA against "
    f"PyTorch's faster of eager/compiled; {TIMING_RULE}; supported or contradicted only when both "
    "models say so" + BUSY_RULE,
    "C5": f"memory added by training (process peak minus the process after imports, data and "
    f"model build) in each framework's default mode, in a fresh process; on a GPU the allocator "
    f"peak instead; a difference counts when it exceeds {MEMORY_RTOL:.0%} of the smaller figure "
    f"and {MEMORY_ATOL_MIB:g} MiB",
    "C6": "supported when TensorFlow's graph mode adds less memory per steady training step "
    "(peak of the later steps minus the process after the first step, so the traced graph is "
    f"left out) than its eager mode, by more than {MEMORY_RTOL:.0%} and {MEMORY_ATOL_MIB:g} MiB; "
    "contradicted when it adds more by as much; inconclusive in between",
    "C7": "per seed, both frameworks start from the same weights and batches: supported when every "
    "per-seed difference between the frameworks is below the median seed-to-seed change (within "
    f"a framework) or at most {C7_ROUNDING_IMAGES} test images; contradicted when the median "
    "per-seed difference reaches the seed-to-seed change; inconclusive in between",
    "C8": f"supported when moving the PyTorch training code to a device changes at most "
    f"{MINIMAL_LINES} lines; contradicted above {MANY_LINES}",
    "C9": "CPU half, by a majority of operations: each row of the operation table (5 operations "
    f"and the training step) is decided by the timing rule ({TIMING_RULE}); supported when "
    "TensorFlow is clearly faster on more than half of the rows, contradicted when PyTorch is; "
    "otherwise inconclusive. GPU half: the same majority for PyTorch on a GPU; the halves must "
    "agree" + BUSY_RULE,
    "C10": "each of 06's targets is reached or not per framework; targets reached through a "
    f"framework-neutral route ({', '.join(NEUTRAL_TARGETS)}) count as reached by both; supported "
    "when TensorFlow reached a framework-specific target that PyTorch did not and not the other "
    "way round; contradicted when PyTorch did and not the other way round; a tie is "
    "inconclusive",
    "C11": "contradicted when TorchScript warns that it is deprecated and rejects ordinary "
    "Python that torch.compile runs unchanged; supported when it is not deprecated and accepts "
    "every example",
    "C12": "multi-GPU half: the complete runnable script of each side is counted (launcher and "
    "process-group setup included) against the same script for one process; TensorFlow's "
    "fewer-line route (Keras fit or a custom loop) counts; supported when PyTorch's adds at "
    f"least {DISTRIBUTED_MARGIN_LINES} fewer lines, contradicted when TensorFlow's adds at least "
    "that many fewer, inconclusive in between",
    "C13": f"supported when PyTorch-only models outnumber TensorFlow-only ones at least "
    f"{FAR_MORE_RATIO:g} to 1 in a sample of at least {MIN_HUB_SAMPLE} models; contradicted below "
    "1 to 1",
}

# What a CPU-only machine leaves out of each claim that it measures only in part.
PARTLY = {
    "C4": "GPU use (utilisation) and speed on a GPU",
    "C5": "GPU memory: the quoted 1.7 GB vs 3.5 GB are GPU figures and cannot be checked on a CPU",
    "C6": "fragmentation (visible only in a GPU allocator's reserved-minus-allocated memory)",
    "C8": "a run on a real GPU (the device version ran on the CPU)",
    "C9": "the GPU half (PyTorch faster on GPUs)",
    "C10": "how mature each route is (serving, mobile and browser tooling beyond one artifact)",
    "C12": "GPUs and TPUs (the distributed runs use CPU processes)",
}


UPSTREAM = {
    # Records the claims lab reads from other lessons, in both tracks. Change names here only.
    "C10": {"concept": "06_deployment", "records": {"targets": "deployment_targets"}},
    "C12": {
        "concept": "07_distributed",
        "records": {
            "lines": "lines_changed_for_distribution",
            "matches": "distributed_vs_single_max_diff",
        },
    },
}

"""The memory a training run takes in this process: the claims lab's C5 and C6 figures.

The framework sides (:mod:`course_utils.claims_torch`, :mod:`course_utils.claims_tf`) call
:func:`memory_figures` inside the harness's worker processes (:mod:`course_utils.claims_worker`).
"""


def memory_figures(step, steps, device, parameters):
    """Run ``step()`` ``steps`` times in this process and return its memory, in MiB::

        {"runtime": resident memory before training (framework, data, model),
         "first_step_delta": what the first step (tracing/compiling included) added at its peak,
         "steady_delta": what the later steps needed at their peak, above the process after
                         the first step (so the traced or compiled graph is left out),
         "train_peak": the process peak over the whole run, "train_delta": that minus runtime,
         "accelerator_peak": the framework allocator's peak on a GPU (None on a CPU),
         "peak_was_reset": bool, "parameters": int, "steps": int}

    Uses :func:`course_utils.training.measure_memory` (process RSS, allocator peak on a GPU),
    once for the first step and once for the rest.
    """
    from .bench import process_rss
    from .training import measure_memory

    if steps < 2:
        raise ValueError("steps must be at least 2: a first step and steady steps")
    runtime = process_rss()
    first = measure_memory(step, device)
    after_first = process_rss()
    rest = measure_memory(lambda: [step() for _ in range(steps - 1)], device)
    mib = 2**-20
    peak = max(first.rss_peak, rest.rss_peak)
    accel = [m.accelerator_peak for m in (first, rest) if m.accelerator_peak is not None]
    return {
        "runtime": runtime * mib,
        "first_step_delta": (first.rss_peak - runtime) * mib,
        "steady_delta": (rest.rss_peak - after_first) * mib,
        "train_peak": peak * mib,
        "train_delta": (peak - runtime) * mib,
        "accelerator_peak": max(accel) * mib if accel else None,
        "peak_was_reset": first.peak_was_reset and rest.peak_was_reset,
        "parameters": parameters,
        "steps": steps,
    }

"""How the lesson's figures are recorded for the report: one call per section,
``record_figures(record, name=value, ...)``, each name with the tolerance a rerun on another CPU
must meet (declared here, once, instead of beside every figure in the notebook)."""

from .. import records

ACCURACY = {"atol": 2 / 270}  # 2 of the 270 test images may flip between frameworks
CROSSED = {"atol": 1e-4}  # float32 rounding of a crossed model: the lesson's tolerance
LOSSES = {"rtol": 1e-5}

TOLERANCES = {
    # exact facts (booleans, strings, verdicts)
    "keras_backend_when_set_late": {},
    "dlpack_shares_memory": {},
    "dlpack_write_seen": {},
    "dlpack_cases": {},
    "variable_view_goes_stale": {},
    "dlpack_string_tensor": {},
    "round_trip_shares_memory": {},
    "custom_gradient_crossed": {},
    "pipeline_first_labels": {},
    "keras_probe_other_framework": {},
    # numbers
    "dlpack_grad_after_crossing": {"rtol": 1e-6, "atol": 1e-6},
    "round_trip_s": {"unit": "s", "note": "[bytes, median] pairs"},
    "round_trip_growth": {},
    "producer_test_accuracy": ACCURACY,
    "crossed_accuracy": ACCURACY,
    "onnx_accuracy": ACCURACY,
    "unreordered_accuracy": ACCURACY,
    "crossed_max_abs_diff": CROSSED,
    "onnx_max_abs_diff": CROSSED,
    "keras_file_max_abs_diff": CROSSED,
    "crossed_logits": {"rtol": 1e-4, "atol": 1e-4},
    "batchnorm_port": {"rtol": 1e-3, "atol": 1e-5},
    "strided_padding_port": {"rtol": 1e-3, "atol": 1e-5},
    "keras_initial_logits": {"atol": 1e-5},
    "keras_first_losses": LOSSES,
    "keras_native_step_losses": LOSSES,
    "keras_seeded_kernel": {"rtol": 1e-5, "atol": 1e-6},
    "ste_gradient": {"rtol": 1e-5, "atol": 1e-6},
    "rng_draws": {"rtol": 1e-6},
    "resume_losses_went_on": {"rtol": 1e-4},
    "resume_losses_weights_only": {"rtol": 1e-4},
}


def record_figures(record, **figures):
    """Record each ``name=value`` with the tolerance :data:`TOLERANCES` declares for it."""
    for name, value in figures.items():
        record(name, value, **TOLERANCES[name])


# A crossed model's float32 rounding: up to 8e-6 on the CPUs tried, its digits different on each
# (5.2e-06 on one, 7.6e-06 under AVX2 kernels). Below this it is shown as rounding, not as digits.
ROUNDING = 5e-5


def shown(diff, resolution=ROUNDING):
    """A difference as printed: its value, or ``below 5e-05`` where only rounding is left."""
    return records.shown(diff, resolution)


def verdict(diff, tol):
    """Say, from a printed difference and a named tolerance, whether two results agree."""
    resolution = min(ROUNDING, tol)  # a tighter threshold is shown to its own size
    if diff <= tol:
        return f"agree ({shown(diff, resolution)}, threshold {tol:.0e})"
    return f"differ ({shown(diff, resolution)} > {tol:.0e})"

"""The stability check of the claims lab: :func:`repeat` runs the whole lab several times, each
in fresh processes through the harness (:mod:`course_utils.claims_worker`), and shows which
claims flip between supported and contradicted.
"""

from .assessment import assess, upstream
from .catalogue import CLAIMS, CONTRADICTED, SUPPORTED
from .experiments import settings
from .rules import machine_busy


def repeat(times=3, quick=True, threads=None, progress=False, upstream_figures=None):
    """Run the lab's measurements ``times`` times (fresh processes each time) and return
    ``{claim: [outcome, ...]}`` with the verdicts of every run, printing one line per claim.

    The stability check of the lab: on one idle machine no claim may flip between supported and
    contradicted. Each run's busy check is printed too, so a loaded machine shows as such.
    """
    from .. import claims_worker

    plan = settings(quick=quick, threads=threads)
    upstream_figures = upstream_figures or {c: upstream(c) for c in ("C10", "C12")}
    seen = {c: [] for c in CLAIMS}
    for i in range(times):
        results = claims_worker.measure_now(plan, progress=progress)  # never a shared one
        busy = machine_busy(results)
        print(f"run {i + 1} of {times}: {busy or 'the machine was not busy while timing'}")
        for v in assess(results, upstream_figures):
            seen[v.claim].append(v.outcome)
    for claim, outcomes in seen.items():
        flip = SUPPORTED in outcomes and CONTRADICTED in outcomes
        print(
            f"{claim:>3} {CLAIMS[claim].title:<44} {' | '.join(outcomes)}"
            + ("  <- FLIPS" if flip else "")
        )
    flips = [c for c, o in seen.items() if SUPPORTED in o and CONTRADICTED in o]
    print("claims that flip between supported and contradicted:", ", ".join(flips) or "none")
    return seen

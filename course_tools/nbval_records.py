"""A pytest plugin for nbval: compare course records with the tolerance they declare.

Load it with ``-p course_tools.nbval_records`` beside ``--nbval``. Every output is still
compared strictly by nbval, except the pairs of outputs that are both course records
(:data:`course_utils.records.MIME`): for those, everything but the value is compared exactly
(concept, track, name, unit, note, the tolerance itself) and the value within the tolerance
stored in the notebook. A record that agrees is then handed to nbval as the stored output, so
its readable line (which prints the value) does not fail on the last digit; a record that does
not agree fails the cell with the figure, both values and the tolerance.

float32 results differ in the 6th-7th digit between CPUs (instruction sets, BLAS and oneDNN
kernels), so a figure printed to 12 digits cannot be compared exactly on another machine.
"""

import copy

from course_utils.records import MIME, agree

_FIELDS = ("concept", "track", "name", "unit", "note", "tolerance")


def reconcile(test, ref):
    """Return ``(test, problems)``: fresh outputs with agreeing records replaced by the stored ones.

    ``test`` and ``ref`` are lists of outputs (nbformat nodes or dicts). Records are paired in
    order of appearance; anything that is not a pair of records is left for nbval to compare.
    """
    fresh = [i for i, out in enumerate(test) if MIME in out.get("data", {})]
    stored = [i for i, out in enumerate(ref) if MIME in out.get("data", {})]
    test = list(test)
    problems = []
    for t, r in zip(fresh, stored, strict=False):
        got, want = test[t]["data"][MIME], ref[r]["data"][MIME]
        label = f"record {want.get('name')!r}"
        differs = [f for f in _FIELDS if got.get(f) != want.get(f)]
        if differs:
            problems += [
                f"{label}: {f} is {got.get(f)!r}, the notebook stored {want.get(f)!r}"
                for f in differs
            ]
            continue
        why = agree(want.get("value"), got.get("value"), want.get("tolerance"))
        if why:
            problems.append(f"{label} (tolerance {want.get('tolerance')!r}): {why}")
            continue
        replaced = copy.deepcopy(test[t])
        replaced["data"] = copy.deepcopy(ref[r]["data"])
        test[t] = replaced
    return test, problems


def pytest_configure(config):
    """Wrap nbval's output comparison (only when nbval is active)."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to extend
        return
    if getattr(IPyNbCell.compare_outputs, "_course_records", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        test, problems = reconcile(test, ref)
        same = original(self, test, ref, skip_compare)
        if problems:
            self.comparison_traceback = [
                "Course records outside their declared tolerance:",
                *[f"  {p}" for p in problems],
                *getattr(self, "comparison_traceback", []),
            ]
            return False
        return same

    compare_outputs._course_records = True
    IPyNbCell.compare_outputs = compare_outputs

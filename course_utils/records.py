"""Record a notebook's key figures, keyed by concept, track and name.

A record is shown as a cell output carrying a JSON payload (MIME type :data:`MIME`) beside a
readable line. The figures therefore live in the executed notebook itself: the runner gathers
them from the executed copies, and the tests compare the two tracks' stored records.
"""

import json
import math
import numbers

MIME = "application/vnd.course-record+json"
TRACKS = ("pytorch", "tensorflow")
SIGNIFICANT = 12  # digits kept: tight enough for float64 parity, loose enough to be repeatable


def plain(value):
    """Convert tensors, NumPy values and nested lists into plain JSON-ready Python values."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "numpy") and not isinstance(value, numbers.Number):  # tf.Tensor
        value = value.numpy()
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if not math.isfinite(value) else float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def _short(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 6:
        return f"[{len(value)} values]"
    return json.dumps(value)


class Recorder:
    """Callable that records figures for one notebook: ``record(name, value, unit=None)``."""

    def __init__(self, concept, track):
        if track not in TRACKS:
            raise ValueError(f"track must be one of {TRACKS}, not {track!r}")
        self.concept, self.track = concept, track

    def entry(self, name, value, unit=None, note=None):
        """Return the record as a dict (without showing it)."""
        return {
            "concept": self.concept,
            "track": self.track,
            "name": name,
            "value": plain(value),
            "unit": unit,
            "note": note,
        }

    def __call__(self, name, value, unit=None, note=None):
        """Show the record as a cell output (returns None, so nothing is echoed twice)."""
        entry = self.entry(name, value, unit, note)
        text = f"[recorded] {name} = {_short(entry['value'])}" + (f" {unit}" if unit else "")
        try:
            from IPython.display import display

            display({MIME: entry, "text/plain": text}, raw=True)
        except ImportError:  # plain Python: just say it
            print(text)


def recorder(concept, track):
    """Return a :class:`Recorder` for one notebook, e.g. ``record = recorder("02_autograd", "pytorch")``."""
    return Recorder(concept, track)


def read_records(notebook):
    """Return the records stored in a notebook's outputs (a path or a ``nbformat`` node)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if not hasattr(notebook, "cells") else notebook
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                found.append(dict(data[MIME]))
    return found


def by_name(records):
    """Return ``{name: value}`` for a list of records (a later record of a name wins)."""
    return {r["name"]: r["value"] for r in records}

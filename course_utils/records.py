"""Record a notebook's key figures, keyed by concept, track and name, with their tolerance.

A record is shown as a cell output carrying a JSON payload (MIME type :data:`MIME`) beside a
readable line. The figures therefore live in the executed notebook itself: the runner gathers
them from the executed copies, and the tests compare the two tracks' stored records.

Every record says how exactly it reproduces on another machine (its ``tolerance``):

- ``"exact"``: integers, booleans, strings and anything else without a float in it;
- ``{"rtol": r, "atol": a}``: floating-point figures, compared as ``|got - want| <= atol +
  rtol * |want|`` element by element. Declare it (``record("loss", x, rtol=1e-5)``) or let it
  follow from the value's dtype (a float32 array gets :data:`DTYPE_TOLERANCE` ``["float32"]``).
  A single integer may declare one too, when it varies from machine to machine for a reason the
  notebook states (a file that holds the paths it was built from); integers inside a float
  record (shapes, counts) always compare exactly;
- ``None``: a float with no declared tolerance. Such a figure is variable (a timing, a memory
  size) and belongs in a cell tagged ``nbval-ignore-output``; a layout test enforces that.

The notebook check (:mod:`course_tools.nbval_records`) compares stored and fresh records with
the stored tolerance, because float32 results differ in their last digits from CPU to CPU.
"""

import json
import math
import numbers


def shown(diff, resolution):
    """A difference as printed: ``3.3e-02``, or ``below 1e-06`` where it is under ``resolution``.

    Below its resolution a difference is float rounding, whose digits change from CPU to CPU
    (0.0 on one, 4.8e-06 on another): a stored output shows that it is there, not its digits.
    Lessons call it through their own defaults (``training.shown``, ``interop.shown``,
    ``export.diff_line``).
    """
    return f"{diff:.1e}" if diff >= resolution else f"below {resolution:.0e}"


MIME = "application/vnd.course-record+json"
TRACKS = ("pytorch", "tensorflow")
SIGNIFICANT = 12  # digits kept: tight enough for float64 parity, loose enough to be repeatable
EXACT = "exact"
# Default tolerances by dtype: a few ulps of rounding, summed over a forward pass or a few
# steps, from CPU to CPU. float64 autograd stays within 1e-10 relative; float32 within 1e-5.
DTYPE_TOLERANCE = {
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float16": {"rtol": 1e-2, "atol": 1e-3},
    "bfloat16": {"rtol": 2e-2, "atol": 1e-2},
}


def plain(value):
    """Convert tensors, NumPy values and nested lists into plain JSON-ready Python values."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            value = value.float()
        value = value.numpy()
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


def dtype_name(value):
    """Return the dtype of a tensor or NumPy value as 'float32', 'int64', ... (None for others)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or isinstance(value, bool | int | float):
        return None
    name = getattr(dtype, "name", None) or str(dtype)
    return name.removeprefix("torch.")


def has_float(value):
    """Return True when a plain value holds a float anywhere (bools and ints are not floats)."""
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    return False


def tolerance(value, plain_value, rtol=None, atol=None):
    """Return the tolerance of a record: "exact", ``{"rtol", "atol"}``, or None (undeclared).

    ``value`` is what was passed to the recorder (its dtype gives the default), ``plain_value``
    its plain form. Declaring only one of ``rtol``/``atol`` sets the other to 0.
    """
    for name, given in (("rtol", rtol), ("atol", atol)):
        if given is not None and not (isinstance(given, int | float) and given >= 0):
            raise ValueError(f"{name} must be a number >= 0, not {given!r}")
    if not has_float(plain_value):
        if (rtol is not None or atol is not None) and not _is_int(plain_value):
            raise ValueError(
                "a tolerance was given for a value without floats (it is exact); of the values "
                "without floats only a single integer may declare one"
            )
        if rtol is None and atol is None:
            return EXACT
    if rtol is not None or atol is not None:
        return {"rtol": float(rtol or 0.0), "atol": float(atol or 0.0)}
    default = DTYPE_TOLERANCE.get(dtype_name(value) or "")
    return dict(default) if default else None


def agree(want, got, tol):
    """Return ``None`` when ``got`` matches ``want`` within ``tol``, else why not (a string).

    ``tol`` is a record's tolerance: "exact" or None compare exactly; ``{"rtol", "atol"}``
    compares floats element by element and everything else (shape, ints, strings) exactly.
    """
    if tol in (EXACT, None):
        return None if want == got else f"expected {_short(want)}, got {_short(got)}"
    if _is_int(want) and _is_int(got):  # a single integer that declared its tolerance
        if abs(got - want) <= tol["atol"] + tol["rtol"] * abs(want):
            return None
        return (
            f"expected {want}, got {got} (difference {abs(got - want)} > "
            f"atol {tol['atol']:g} + rtol {tol['rtol']:g} x |expected|)"
        )
    return _agree(want, got, tol["rtol"], tol["atol"], "value")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _agree(want, got, rtol, atol, where):
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return f"{where}: expected {len(want)} elements, got {len(got)}"
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            problem = _agree(w, g, rtol, atol, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(want, dict) and isinstance(got, dict):
        if sorted(want) != sorted(got):
            return f"{where}: expected keys {sorted(want)}, got {sorted(got)}"
        for key in want:
            problem = _agree(want[key], got[key], rtol, atol, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    numeric = (int, float)
    if (
        isinstance(want, numeric)
        and isinstance(got, numeric)
        and not isinstance(want, bool)
        and not isinstance(got, bool)
        and (isinstance(want, float) or isinstance(got, float))
    ):
        if math.isnan(want) and math.isnan(got):
            return None
        if want == got or abs(got - want) <= atol + rtol * abs(want):
            return None
        return (
            f"{where}: expected {want!r}, got {got!r} (difference {abs(got - want):.3g} > "
            f"atol {atol:g} + rtol {rtol:g} x |expected|)"
        )
    return (
        None
        if want == got and type(want) is type(got)
        else f"{where}: expected {want!r}, got {got!r}"
    )


def _short(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 6:
        return f"[{len(value)} values]"
    return json.dumps(value)


def _tol_text(tol):
    if tol == EXACT:
        return ""
    if tol is None:
        return "  (variable)"
    parts = [f"{k} {tol[k]:g}" for k in ("rtol", "atol") if tol[k]]
    # The tolerance a rerun on another CPU must meet, not a claim about the value itself.
    return f"  (reruns agree within {', '.join(parts) or 'exact'})"


class Recorder:
    """Callable that records figures for one notebook: ``record(name, value, unit=None)``."""

    def __init__(self, concept, track):
        if track not in TRACKS:
            raise ValueError(f"track must be one of {TRACKS}, not {track!r}")
        self.concept, self.track = concept, track

    def entry(self, name, value, unit=None, note=None, *, rtol=None, atol=None):
        """Return the record as a dict (without showing it)."""
        value_plain = plain(value)
        return {
            "concept": self.concept,
            "track": self.track,
            "name": name,
            "value": value_plain,
            "unit": unit,
            "note": note,
            "tolerance": tolerance(value, value_plain, rtol, atol),
        }

    def __call__(self, name, value, unit=None, note=None, *, rtol=None, atol=None):
        """Show the record as a cell output (returns None, so nothing is echoed twice).

        ``rtol``/``atol`` declare how closely the figure reproduces on another CPU; without
        them a float tensor's dtype decides, and a plain Python float is "variable".
        """
        entry = self.entry(name, value, unit, note, rtol=rtol, atol=atol)
        text = f"[recorded] {name} = {_short(entry['value'])}" + (f" {unit}" if unit else "")
        text += _tol_text(entry["tolerance"])
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

"""TensorFlow.js conversion, tried beside the course's TensorFlow and reported as it happened.

TensorFlow's own browser route converts a SavedModel with the ``tensorflowjs`` converter (pip)
and runs the result with the ``@tensorflow/tfjs`` runtime (npm; not among ``web/``'s packages,
since the converter does not run beside the course's TensorFlow). The converter's releases pin
what they were built with, so it cannot always be installed into the course's environment
without replacing the course's TensorFlow. :func:`convert` therefore runs it in a subprocess
from a side folder (``build/tfjs-converter``) holding the converter and the packages it imports,
installed without their dependencies, on top of the course's own TensorFlow:

    python -m pip install --no-deps --target build/tfjs-converter -r requirements/tfjs-converter.txt

(``python3 course.py setup`` does this.) The outcome is whatever happens: converted files, or
the error that stopped the converter, with the versions involved and the requirements that the
course's environment does not meet (read from the packages' metadata, no network needed).
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

CONVERTER = "tensorflowjs"
RUNTIME = "@tensorflow/tfjs"
PINS_FILE = Path("requirements") / "tfjs-converter.txt"
# The same package under another name: the course installs the CPU-only build of TensorFlow.
ALIASES = {"tensorflow": "tensorflow-cpu"}


def _root():
    from .paths import find_root

    here = Path(__file__).resolve().parents[1]
    return here if (here / PINS_FILE).is_file() else find_root()


def converter_dir():
    """Return the side folder the converter is installed in (``COURSE_TFJS_CONVERTER`` wins)."""
    named = os.environ.get("COURSE_TFJS_CONVERTER")
    if named:
        return Path(named)
    root = _root()
    return (root / "build" / "tfjs-converter") if root else Path("build") / "tfjs-converter"


def install_command():
    """Return the command line, run from the checkout, that installs the converter (a string)."""
    folder, root = converter_dir(), _root()
    if root is not None and folder.is_relative_to(root):
        folder = folder.relative_to(root)
    return f"python -m pip install --no-deps --target {folder.as_posix()} -r {PINS_FILE.as_posix()}"


def _distributions(paths):
    """Return ``{normalized name: Distribution}`` for the distributions found on ``paths``."""
    found = {}
    for dist in metadata.distributions(path=[str(p) for p in paths]):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_normal(name), dist)
    return found


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def versions(folder=None):
    """Return ``{package: version}`` of the converter's packages and the course's TensorFlow."""
    folder = Path(folder or converter_dir())
    side = _distributions([folder]) if folder.is_dir() else {}
    here = _distributions(sys.path)
    out = {}
    for line in _pinned_names():
        if line in side:
            out[line] = side[line].version
    for name in ("tensorflow", "tensorflow-cpu", "keras", "packaging"):
        if name in here:
            out[name] = here[name].version
    return out


def _pinned_names():
    root = _root()
    pins = (root / PINS_FILE) if root else None
    if pins is None or not pins.is_file():
        return [CONVERTER]
    return [
        _normal(line.split("==")[0])
        for line in pins.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def unmet_requirements(folder=None):
    """Return the converter's declared requirements that this environment does not meet.

    Each item is a sentence such as ``"tensorflow_decision_forests 1.12.0 requires
    tensorflow==2.19.0; here: tensorflow_cpu 2.21.0"``. Only the packages in the side folder are
    read; their requirements are checked against the side folder and the course's environment
    together, as the subprocess sees them (``tensorflow-cpu`` counts as ``tensorflow``).
    """
    from packaging.requirements import Requirement

    folder = Path(folder or converter_dir())
    if not folder.is_dir():
        return []
    side = _distributions([folder])
    everything = {**_distributions(sys.path), **side}
    problems = []
    for name in sorted(side):
        dist = side[name]
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            wanted = _normal(req.name)
            have = everything.get(wanted) or everything.get(ALIASES.get(wanted, ""))
            if have is not None and req.specifier.contains(have.version, prereleases=True):
                continue
            where = f"{have.metadata['Name']} {have.version}" if have else "not installed"
            problems.append(f"{dist.metadata['Name']} {dist.version} requires {req}; here: {where}")
    return problems


@dataclass
class Attempt:
    """What happened when the converter ran: ``ok``, the files it wrote or the error."""

    ok: bool
    command: list
    versions: dict
    unmet: list = field(default_factory=list)
    files: list = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    tried: bool = True  # False when the converter is not installed here

    def outcome(self):
        """Return one line for a table: the error, or what was converted and what is left."""
        if not self.tried:
            return f"not tried: {self.error}"
        if not self.ok:
            return self.error
        return (
            f"converted ({', '.join(self.files)}); not run here: the {RUNTIME} runtime is not "
            "among web/package.json's packages"
        )

    def summary(self):
        """Return a few readable lines: versions, the outcome, and what the metadata says."""
        lines = ["versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items())]
        if self.ok:
            lines.append("converted: " + ", ".join(self.files))
        elif not self.tried:
            lines.append(f"not tried: {self.error}")
        else:
            lines.append(f"the converter failed: {self.error}")
        if self.unmet:
            lines.append("requirements this environment does not meet:")
            lines += [f"  - {item}" for item in self.unmet]
        return "\n".join(lines)


def _last_error(text, replacements):
    """Return the last exception line of a traceback, with local paths shortened."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    pattern = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)\b.*)$")
    found = [line for line in lines if pattern.match(line)]
    line = found[-1] if found else (lines[-1] if lines else "no output")
    for path, short in replacements:
        line = line.replace(path, short)
    return re.sub(
        r"^(?:[a-z_]+\.)+(?=[A-Z])", "", line
    )  # tensorflow.python...NotFoundError -> NotFoundError


def convert(saved_model_dir, out_dir, *, folder=None, timeout=300):
    """Run the TensorFlow.js converter on a SavedModel; return an :class:`Attempt`.

    The converter runs as ``python -m tensorflowjs.converters.converter`` in a subprocess with
    the side folder first on ``PYTHONPATH`` and the course's quiet logging settings. Its output
    is a graph model (``model.json`` and weight shards) in ``out_dir``. When the side folder is
    missing, the attempt fails with the command that installs it.
    """
    import time

    from .quiet import ENV

    folder = Path(folder or converter_dir())
    out_dir = Path(out_dir)
    command = [
        sys.executable,
        "-m",
        "tensorflowjs.converters.converter",
        "--input_format=tf_saved_model",
        "--output_format=tfjs_graph_model",
        str(saved_model_dir),
        str(out_dir),
    ]
    shown = ["python", *command[1:5], Path(saved_model_dir).name, out_dir.name]
    if not (folder / CONVERTER).is_dir():
        return Attempt(
            False,
            shown,
            versions(folder),
            error=f"the converter is not installed; install it with: {install_command()}",
            tried=False,
        )
    env = {**os.environ, **ENV, "PYTHONPATH": str(folder)}
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Attempt(False, shown, versions(folder), unmet_requirements(folder), error="timeout")
    seconds = time.perf_counter() - start
    files = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    ok = result.returncode == 0 and "model.json" in files
    error = None
    if not ok:
        site = str(Path(metadata.distribution("numpy").locate_file("")))
        error = _last_error(
            result.stderr or result.stdout,
            [(str(folder), "<converter>"), (site, "<site-packages>")],
        )
    return Attempt(ok, shown, versions(folder), unmet_requirements(folder), files, error, seconds)

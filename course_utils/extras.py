"""What each lesson needs beyond the core install, and a one-sentence stop when it is missing.

``pip install course-utils`` brings only what every lesson's helpers import (NumPy, Matplotlib,
scikit-learn, tqdm, ipywidgets, packaging, nbformat) and TensorBoard, which 05 writes its logs
for; PyTorch and TensorFlow are already there on
Colab, or come with the ``torch`` and ``tensorflow``/``tensorflow-cpu`` extras. The rest are
extras, named after what they are for (``pyproject.toml`` declares the same table, and a test
keeps the two equal):

- ``deploy``: ONNX, ONNX Runtime, the exporters and LiteRT's interpreter (06 and 08);
- ``edge``: ExecuTorch and torchao, built against one PyTorch release (06, where it matches);
- ``course``: what runs the course itself (JupyterLab, papermill, nbval, nbconvert, Playwright,
  psutil) and is never imported by a lesson.

A lesson that needs an extra calls :func:`needs` right after ``cu.quiet()``; its Colab install
cell installs exactly :func:`lesson_extras` of that lesson.
"""

import importlib.metadata
import importlib.util
import json

from .errors import CourseError

# extra -> {module a lesson or helper imports: the distribution that provides it}
EXTRAS = {
    "deploy": {
        "onnx": "onnx",
        "onnxruntime": "onnxruntime",
        "onnxscript": "onnxscript",
        "tf2onnx": "tf2onnx",
        "ai_edge_litert": "ai-edge-litert",
    },
    "edge": {"executorch": "executorch", "torchao": "torchao"},
    "course": {
        "papermill": "papermill",
        "nbval": "nbval",
        "nbconvert": "nbconvert",
        "jupyterlab": "jupyterlab",
        "ipykernel": "ipykernel",
        "playwright": "playwright",
        "psutil": "psutil",
    },
}

# The extras whose absence stops a lesson. 06's ExecuTorch section (``edge``) is optional: it
# says why it was skipped (``export.why_no_executorch``), as the browser section does.
LESSONS = {
    "06_deployment": ("deploy",),
    "08_interop": ("deploy",),
}
# Extras a lesson uses where present and explains where not (never installed by its Colab cell).
OPTIONAL = {"06_deployment": ("edge",)}


class MissingExtra(CourseError):
    """A lesson's optional packages are not installed; the message says what to install."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        return [f"{type(self).__name__}: {self}"]


def lesson_extras(concept):
    """Return the extras the lesson ``concept`` (e.g. ``"06_deployment"``) installs on Colab."""
    return LESSONS.get(concept, ())


def requirement(concept, url):
    """Return the pip requirement of the course package for ``concept``'s Colab install cell."""
    extras = lesson_extras(concept)
    return f"course-utils{'[' + ','.join(extras) + ']' if extras else ''} @ {url}"


def missing(*extras):
    """Return the modules of ``extras`` that cannot be imported here, in order."""
    for extra in extras:
        if extra not in EXTRAS:
            raise CourseError(f"unknown extra {extra!r}; the extras are {', '.join(EXTRAS)}")
    return [m for e in extras for m in EXTRAS[e] if not _importable(m)]


def _importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def install_command(*extras):
    """Return the pip command that adds ``extras`` to the course package as it was installed.

    From a Git URL (Colab's install cell) the same URL; from a checkout (``pip install -e``) that
    folder; else the package by name.
    """
    names = ",".join(extras)
    try:
        origin = json.loads(
            importlib.metadata.distribution("course-utils").read_text("direct_url.json") or "{}"
        )
    except importlib.metadata.PackageNotFoundError:
        origin = {}
    url = origin.get("url", "")
    if "vcs_info" in origin:
        rev = origin["vcs_info"].get("requested_revision")
        return f'pip install "course-utils[{names}] @ git+{url}{"@" + rev if rev else ""}"'
    if url.startswith("file://") and origin.get("dir_info", {}).get("editable"):
        return f'pip install -e "{url.removeprefix("file://")}[{names}]"'
    return f'pip install "course-utils[{names}]"'


def needs(*extras):
    """Stop with one sentence that says what to install when an extra's packages are missing."""
    absent = missing(*extras)
    if absent:
        raise MissingExtra(
            f"this lesson needs {', '.join(absent)} (the course's {','.join(extras)} extra): run "
            f"`{install_command(*extras)}`, then restart the kernel."
        )

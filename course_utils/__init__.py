"""Helpers behind the PyTorch-and-TensorFlow course notebooks.

Importing this package is cheap: it never imports PyTorch or TensorFlow itself, so that
``quiet()`` can set the frameworks' log levels before a notebook imports them. (The claims lab's
framework sides, ``claims_torch`` and ``claims_tf``, import theirs: import them by name.)
"""

from . import (
    bench,
    browser,
    claims,
    claims_worker,
    compiling,
    data,
    devices,
    distributed,
    doctor,
    export,
    gradebook,
    grading,
    graphs,
    instructor,
    interop,
    jupyterlab,
    offload,
    records,
    report,
    serving,
    site,
    stamp,
    submissions,
    targets,
    tfjs,
    training,
    web,
)
from .checks import check
from .data import load_digits
from .errors import CourseError
from .paths import workdir
from .quiet import quiet
from .records import recorder
from .seed import seed_everything

__version__ = "0.1.0"

__all__ = [
    "bench",
    "browser",
    "claims",
    "claims_worker",
    "compiling",
    "data",
    "devices",
    "distributed",
    "doctor",
    "export",
    "gradebook",
    "grading",
    "graphs",
    "jupyterlab",
    "instructor",
    "interop",
    "offload",
    "records",
    "report",
    "serving",
    "site",
    "stamp",
    "submissions",
    "targets",
    "tfjs",
    "training",
    "web",
    "CourseError",
    "check",
    "load_digits",
    "quiet",
    "recorder",
    "seed_everything",
    "workdir",
]

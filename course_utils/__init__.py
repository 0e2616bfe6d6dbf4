"""Helpers behind the PyTorch-and-TensorFlow course notebooks.

Importing this package is cheap: it loads its submodules on first use and never imports
PyTorch or TensorFlow itself, so that ``quiet()`` can set the frameworks' log levels before a
notebook imports them. (The claims lab's framework sides, ``claims_torch`` and ``claims_tf``,
import theirs: import them by name.)
"""

import importlib

from .checks import check
from .data import load_digits
from .errors import CourseError
from .extras import needs
from .paths import workdir
from .quiet import quiet
from .records import recorder
from .seed import seed_everything

# Submodules load on first use (``cu.export``, ``from course_utils import claims``): a notebook
# pays only for what it uses (``export`` and ``interop`` need the [deploy] extra, ``browser`` and
# ``web`` Playwright), and every notebook kernel and worker process imports this package. The course's own machinery (command line, runner,
# report, site, grading) is the separate package ``course_tools``: no lesson imports it.
_SUBMODULES = (
    "bench",
    "browser",
    "claims",
    "claims_worker",
    "compiling",
    "cpu",
    "data",
    "devices",
    "distributed",
    "doctor",
    "export",
    "extras",
    "graphs",
    "int8",
    "interop",
    "memory",
    "offload",
    "plots",
    "records",
    "serving",
    "targets",
    "tfjs",
    "training",
    "web",
)


def speed_settings(framework):
    """Print, and return, what decides ``framework``'s speed here ("torch" or "tensorflow").

    Threads, oneDNN on/off, BLAS, TF32 and compiler defaults, and any kernel switch set in the
    environment: printed wherever a lesson compares timings. Imports that framework.
    """
    from .cpu import print_speed_settings

    return print_speed_settings(framework)


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_SUBMODULES})


__version__ = "0.1.0"

__all__ = [
    *_SUBMODULES,
    "CourseError",
    "check",
    "load_digits",
    "needs",
    "quiet",
    "recorder",
    "seed_everything",
    "workdir",
]

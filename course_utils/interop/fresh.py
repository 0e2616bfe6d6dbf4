"""Fresh Python processes: what this process has imported, a new interpreter started in the
background (one CPU thread, the course's quiet environment) and waited for, and the probes the
lesson runs there (the import order that decides Keras's backend, a string tensor through
DLPack, which frameworks a Keras workflow imports). Whatever is still running when this process
exits is stopped.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from ..quiet import ENV as QUIET_ENV
from ..quiet import filter_banner

# Background processes get one CPU thread each, so they do not compete with the notebook (and
# with each other) for the cores: both frameworks otherwise start a thread per core.
BACKGROUND_ENV = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}

# ---------------------------------------------------------------- two frameworks, one process


def loaded():
    """Return what this process has imported, importing nothing: ``{"torch": version or None,
    "tensorflow": version or None, "keras": version or None, "keras_backend": name or None}``."""
    found = {}
    for name in ("torch", "tensorflow", "keras"):
        module = sys.modules.get(name)
        found[name] = getattr(module, "__version__", None) if module else None
    keras = sys.modules.get("keras")
    found["keras_backend"] = (
        keras.backend.backend() if keras and hasattr(keras, "backend") else None
    )
    return found


@dataclass
class Fresh:
    """What a fresh Python process did: its exit status, its output, and how long it took."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def crashed(self):
        """True when the process was killed by a signal (a C++ abort, a segfault), not an exception."""
        return self.returncode < 0

    @property
    def signal_name(self):
        """The name of the signal that ended the process ("SIGABRT", ...), or None."""
        return signal.Signals(-self.returncode).name if self.crashed else None

    def lines(self, stream="stdout"):
        """Return the non-empty lines of ``stdout`` or ``stderr``."""
        return [line for line in getattr(self, stream).splitlines() if line.strip()]


_RUNNING = set()  # background processes this process started and has not waited for


@atexit.register
def _stop_running():
    """Stop background processes nobody waited for (a notebook interrupted or failed early)."""
    for pending in list(_RUNNING):
        pending.stop()


class PendingFresh:
    """A fresh Python process that runs in the background: :meth:`wait` returns its
    :class:`Fresh`; :meth:`stop` ends it early. Whatever is still running when this process
    exits is stopped."""

    def __init__(self, args, env):
        self._started = time.perf_counter()
        self._process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        _RUNNING.add(self)

    def wait(self, timeout=600):
        """Wait for the process to end (it is killed after ``timeout`` s); return a :class:`Fresh`."""
        try:
            out, err = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        _RUNNING.discard(self)
        # TensorFlow's import banner reaches stderr before its log level applies: drop it.
        err = filter_banner(err)
        return Fresh(self._process.returncode, out, err, time.perf_counter() - self._started)

    def stop(self):
        """Kill the process if it still runs."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()
        _RUNNING.discard(self)


def start_fresh(code, *, env=None):
    """Start ``code`` in a new Python process (this interpreter, the course's quiet environment,
    one thread: :data:`BACKGROUND_ENV`, plus ``env``) and return a :class:`PendingFresh` at once.
    Nothing the process imports or breaks touches this one, and this notebook goes on while it
    runs."""
    return PendingFresh([sys.executable, "-c", code], _child_env(env))


def _child_env(extra=None):
    return {**os.environ, **QUIET_ENV, **BACKGROUND_ENV, **(extra or {})}


def fresh_python(code, *, env=None, timeout=300):
    """Run ``code`` in a new Python process and wait for it: return a :class:`Fresh`."""
    return start_fresh(code, env=env).wait(timeout)


# Importing TensorFlow imports part of Keras, which reads KERAS_BACKEND at that moment.
IMPORT_ORDER_PROBE = """\
import os
os.environ.pop("KERAS_BACKEND", None)  # start from the default, whatever the parent set
import tensorflow as tf
os.environ["KERAS_BACKEND"] = "torch"  # too late: TensorFlow's import already chose
import keras
print(keras.backend.backend())"""

# A TensorFlow string tensor has no DLPack form; asking for one stops the process in C++.
STRING_TENSOR_PROBE = """\
import tensorflow as tf
import torch
print("before", flush=True)
torch.from_dlpack(tf.constant(["a", "string"]))
print("after", flush=True)"""

# Steps of a small Keras workflow, run one by one in a fresh process by :func:`keras_imports_probe`.
KERAS_STEPS = {
    "import keras": "import keras",
    "build and call a model": (
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "model(np.zeros((1, 4), 'float32'))"
    ),
    "compile and fit": (
        "model.compile(optimizer='sgd', loss='mse')\n"
        "model.fit(np.zeros((8, 4), 'float32'), np.zeros((8, 2), 'float32'), verbose=0)"
    ),
    "keras.utils.set_random_seed": "keras.utils.set_random_seed(0)",
    "model.save to a .keras file": "model.save(FOLDER + '/probe.keras')",
}


def keras_imports_probe(backend, folder, steps=None):
    """Return the code of a probe that sets ``KERAS_BACKEND=backend``, runs ``steps`` (default
    :data:`KERAS_STEPS`) one by one and prints, after each, which frameworks are loaded (read
    the answer with :func:`keras_imports`). ``folder`` receives the saved model file.

    A fresh process is the only honest place to ask: in a notebook that already imported both
    frameworks, every answer would be "loaded".
    """
    lines = [
        "import json, os, sys",
        f"os.environ['KERAS_BACKEND'] = {backend!r}",
        "import numpy as np",
        f"FOLDER = {str(folder)!r}",
    ]
    report = (
        "print(json.dumps({{'step': {name!r}, 'torch': 'torch' in sys.modules, "
        "'tensorflow': 'tensorflow' in sys.modules}}), flush=True)"
    )
    for name, code in (steps or KERAS_STEPS).items():
        lines += [code, report.format(name=name)]
    return "\n".join(lines)


def keras_imports(done):
    """Return the rows ``{"step", "torch", "tensorflow"}`` a :func:`keras_imports_probe`
    printed (``done`` is its :class:`Fresh`); raise with its error output if it failed."""
    if done.returncode != 0:
        raise RuntimeError(f"the Keras probe failed:\n{done.stderr[-2000:]}")
    return [json.loads(line) for line in done.lines() if line.startswith("{")]

"""Crossing between PyTorch and TensorFlow: tensors through DLPack, weights across layouts, a
model trained in the other framework (made in a fresh process), and whole models as ONNX.

The weight layouts are those of :mod:`course_utils.training` (Keras layout in NumPy: dense
``(in, out)``, convolution HWIO, channels-last flatten); this module reuses its converters.
Nothing here imports a framework at module level: a helper imports what it needs when called.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import training
from ..quiet import ENV as QUIET_ENV
from ..quiet import filter_banner
from ..training import CNN_SPEC, Layer

FRAMEWORKS = ("torch", "tensorflow")
# Background processes get one CPU thread each, so they do not compete with the notebook (and
# with each other) for the cores: both frameworks otherwise start a thread per core.
BACKGROUND_ENV = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}
CNN_NAMES = ("conv1", "conv2", "out")  # the CNN's layers, the same names in both frameworks

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


# ---------------------------------------------------------------- DLPack: tensors without copies


def address(x):
    """Return the memory address of the first element of a CPU tensor or array (an int).

    Works for PyTorch tensors, NumPy arrays and TensorFlow tensors (read through DLPack, which
    shares the buffer, so asking never copies). Two arrays with the same address and an
    overlapping extent share memory.
    """
    if hasattr(x, "data_ptr"):  # torch.Tensor
        return x.data_ptr()
    if hasattr(x, "read_value"):  # tf.Variable: the buffer that holds its current value
        x = x.value()
    if isinstance(x, np.ndarray):
        return x.__array_interface__["data"][0]
    if "torch" in sys.modules:  # TensorFlow tensors: through DLPack, which never copies
        import torch

        return torch.from_dlpack(x).data_ptr()
    return np.from_dlpack(x).__array_interface__["data"][0]


def shares_memory(a, b):
    """Return True when ``a`` and ``b`` (any mix of PyTorch, TensorFlow and NumPy arrays on the
    CPU) start at the same address, i.e. one is a view of the other's memory."""
    return address(a) == address(b)


@dataclass
class Crossing:
    """The outcome of moving one value across: what came out, whether it shares the source's
    memory (None when it failed), and the error as "Type: first line" when it raised."""

    result: object = field(repr=False)
    shares: bool | None
    error: str | None

    @property
    def verdict(self):
        """ "shared", "copied" or "error", computed from the outcome."""
        if self.error:
            return "error"
        return "shared" if self.shares else "copied"


def crossing(source, cross):
    """Call ``cross(source)`` and return a :class:`Crossing`: the result, whether it shares
    ``source``'s memory, or the error it raised (caught: the error is the lesson)."""
    try:
        result = cross(source)
    except Exception as err:  # the frameworks raise their own types; show them all
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return Crossing(None, None, f"{type(err).__name__}: {first}")
    return Crossing(result, shares_memory(source, result), None)


def crossing_rows(cases):
    """Try each case and return one row per case: ``{"case", "verdict", "error", "fix"}``.

    ``cases`` is a list of ``(name, make, cross, fix)``: ``make()`` builds the source,
    ``cross(source)`` is the crossing under test, ``fix(source)`` the usual remedy (or None).
    ``verdict`` and ``fix`` are "shared", "copied" or "error" (:attr:`Crossing.verdict`; ``fix``
    is None without a remedy); ``error`` is the crossing's exception type name, or None.
    """
    rows = []
    for name, make, cross, fix in cases:
        source = make()
        tried = crossing(source, cross)
        rows.append(
            {
                "case": name,
                "verdict": tried.verdict,
                "error": tried.error.split(":")[0] if tried.error else None,
                "fix": crossing(source, fix).verdict if fix is not None else None,
            }
        )
    return rows


def format_crossings(rows):
    """Return :func:`crossing_rows` as a plain-text table."""
    from ..export import format_table

    columns = [
        ("case", "crossing", "s"),
        ("verdict", "result", "s"),
        ("error", "error", "s"),
        ("fix", "with the usual fix", "s"),
    ]
    return format_table(rows, columns)


def check_failure(done):
    """Return the "Check failed: ..." part of a C++ assertion in a :class:`Fresh`'s stderr (the
    time stamp and process id before it change every run), or None when there is none."""
    for line in done.lines("stderr"):
        if "Check failed" in line:
            return line[line.index("Check failed") :].strip()
    return None


def time_round_trips(routes, sizes, *, repeats=5, make=None):
    """Time each route's round trip for tensors of ``sizes`` elements; return a list of rows.

    ``routes`` maps a name to ``trip(x) -> y``; ``make(n)`` builds the input (default: a
    PyTorch float32 tensor of ``n`` elements). Each row is ``{"route", "elements", "bytes",
    "median_s", "min_s"}``, from ``repeats`` timed calls after one untimed warm-up.
    """
    from ..bench import benchmark

    if make is None:
        import torch

        def make(n):
            return torch.rand(n)

    rows = []
    for n in sizes:
        x = make(n)
        nbytes = _nbytes(x)
        for name, trip in routes.items():
            result = benchmark(
                lambda trip=trip, x=x: trip(x), warmup=1, repeats=repeats, label=name
            )
            rows.append(
                {
                    "route": name,
                    "elements": int(n),
                    "bytes": nbytes,
                    "median_s": result.median,
                    "min_s": result.min,
                }
            )
    return rows


def _nbytes(x):
    if hasattr(x, "element_size"):  # torch.Tensor
        return x.element_size() * x.nelement()
    if hasattr(x, "nbytes") and isinstance(x.nbytes, int):  # NumPy
        return x.nbytes
    return int(np.prod(x.shape)) * x.dtype.size  # tf.Tensor


def plot_round_trips(rows, title=None):
    """Plot the median round-trip time of every route against the tensor size (log-log);
    return the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for route in dict.fromkeys(r["route"] for r in rows):
        mine = [r for r in rows if r["route"] == route]
        ax.loglog(
            [r["bytes"] for r in mine], [r["median_s"] * 1e6 for r in mine], marker="o", label=route
        )
    ax.set_xlabel("tensor size (bytes)")
    ax.set_ylabel("median round trip (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- weights across layouts


def structure(spec=CNN_SPEC):
    """Return ``[(kind, flat_from), ...]`` for a layer spec of :mod:`course_utils.training`:
    each layer's kind and, for a dense layer after a Flatten, the (H, W, C) map it reads."""
    return [(kind, dims[0] if isinstance(dims[0], tuple) else None) for kind, *dims in spec]


def layers_from_state_dict(state_dict, spec=CNN_SPEC, names=CNN_NAMES):
    """Return :class:`~course_utils.training.Layer` objects in the Keras layout from a PyTorch
    ``state_dict`` (``{"conv1.weight": OIHW, "conv1.bias": ..., "out.weight": (out, in)}``,
    tensors or arrays). ``spec`` gives each layer's kind and flatten shape; ``names`` the
    modules in order. Uses :mod:`course_utils.training`'s converters.
    """
    layers = []
    for name, (kind, flat_from) in zip(names, structure(spec), strict=True):
        weight = _numpy(state_dict[f"{name}.weight"])
        bias = _numpy(state_dict[f"{name}.bias"])
        if kind == "conv":
            kernel = training.hwio_from_oihw(weight)  # OIHW -> HWIO
        else:
            kernel = training.dense_from_linear(weight)  # (out, in) -> (in, out)
            if flat_from is not None:  # rows in PyTorch's (C, H, W) flatten order -> (H, W, C)
                kernel = training.hwc_rows_from_chw(kernel, flat_from)
        layers.append(Layer(kind, kernel, bias, flat_from))
    return layers


def state_dict_from_layers(layers, names=CNN_NAMES):
    """Return a PyTorch-layout ``{"<name>.weight": array, "<name>.bias": array}`` (NumPy) from
    Keras-layout :class:`~course_utils.training.Layer` objects (the inverse of
    :func:`layers_from_state_dict`)."""
    out = {}
    for name, layer in zip(names, layers, strict=True):
        out[f"{name}.weight"], out[f"{name}.bias"] = training.torch_params(layer)
    return out


def layers_from_keras_arrays(arrays, spec=CNN_SPEC, names=CNN_NAMES):
    """Return :class:`~course_utils.training.Layer` objects from arrays saved by Keras layer
    name (``{"conv1/kernel": HWIO, "conv1/bias": ..., "out/kernel": (in, out)}``): already the
    Keras layout, so nothing moves."""
    return [
        Layer(kind, _numpy(arrays[f"{n}/kernel"]), _numpy(arrays[f"{n}/bias"]), flat_from)
        for n, (kind, flat_from) in zip(names, structure(spec), strict=True)
    ]


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return np.asarray(value)


# ---------------------------------------------------------------- the models both sides train


def torch_cnn():
    """Return the course's small CNN as a PyTorch module (input ``(N, 1, 8, 8)``, channels first;
    modules ``conv1``, ``conv2``, ``out``), the same network as 05_training's."""
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
            self.out = nn.Linear(16 * 2 * 2, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.out(x.flatten(1))

    return CNN()


def keras_cnn():
    """Return the same CNN as a Keras model (input ``(N, 8, 8, 1)``, channels last; layers named
    ``conv1``, ``conv2``, ``out``). Works on any Keras backend."""
    import keras

    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, name="out"),
        ],
        name="cnn",
    )


# ---------------------------------------------------------------- a model from the other side


@dataclass
class Delivery:
    """The files a model trained in ``framework`` arrived as, in ``folder``, and what the
    process that trained it reported (``meta``: versions, steps, losses, test accuracy)."""

    framework: str
    folder: Path
    meta: dict

    @property
    def files(self):
        """The delivered files' names, sorted (no sizes: they vary with library versions)."""
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.iterdir())

    def path(self, name):
        """Return the path of one delivered file (``"weights.npz"``, ``"model.onnx"``, ...)."""
        return self.folder / name

    def weights(self):
        """Return the delivered weights: ``{name: NumPy array}`` in the framework's own layout."""
        with np.load(self.path("weights.npz")) as data:
            return {k: data[k] for k in data.files}

    def optimizer_state(self):
        """Return the optimizer's momentum: ``{name: NumPy array}``, named like :meth:`weights`."""
        with np.load(self.path("optimizer.npz")) as data:
            return {k: data[k] for k in data.files}

    def test_logits(self):
        """Return the trained model's logits on the test set, computed where it was trained."""
        return np.load(self.path("test_logits.npy"))


class PendingDelivery:
    """A model being trained in another process: :meth:`wait` returns the :class:`Delivery`."""

    def __init__(self, framework, folder, process):
        self.framework, self.folder, self._process = framework, Path(folder), process

    def wait(self, timeout=600):
        """Wait for the producing process; return the :class:`Delivery` (raise if it failed).

        ``meta["wall_s"]`` is the process's wall time, start to end, as seen from here."""
        done = self._process.wait(timeout)
        if done.returncode != 0:
            raise RuntimeError(
                f"training the {self.framework} model in a fresh process failed "
                f"(exit status {done.returncode}):\n{done.stderr[-3000:]}"
            )
        meta = json.loads((self.folder / "meta.json").read_text())
        meta["wall_s"] = done.seconds
        return Delivery(self.framework, self.folder, meta)

    def stop(self):
        """Stop the producing process if it still runs (e.g. when a notebook is interrupted)."""
        self._process.stop()


def start_delivery(
    framework, folder, *, seed=0, epochs=3, batch_size=32, lr=0.05, momentum=0.9, resume_steps=5
):
    """Start training the course's CNN in ``framework`` ("torch" or "tensorflow") in a fresh
    Python process that imports only that framework; return a :class:`PendingDelivery`.

    The process starts from :func:`~course_utils.training.init_weights` ``(CNN_SPEC, seed)``,
    runs ``epochs`` of SGD with momentum over the digits in the shared NumPy batch order, and
    writes to ``folder``: ``weights.npz`` (its own layout and names), ``optimizer.npz`` (the
    momentum of every weight, same names), its native file (``state_dict.pt`` or
    ``model.keras``), ``model.onnx``, ``test_logits.npy`` and ``meta.json``. Then it trains
    ``resume_steps`` more steps on :func:`resume_batches` and reports their losses in
    ``meta["resume_losses"]`` (the files keep the state from before). This notebook keeps
    working while it runs.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, not {framework!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():  # a fresh delivery every run
        if old.is_file():
            old.unlink()
    settings = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "momentum": momentum,
        "resume_steps": resume_steps,
    }
    env = _child_env({"KERAS_BACKEND": "tensorflow"} if framework == "tensorflow" else None)
    args = [sys.executable, "-m", "course_utils.interop", framework, str(folder)]
    return PendingDelivery(framework, folder, PendingFresh([*args, json.dumps(settings)], env))


def deliver(framework, folder, **settings):
    """Train in a fresh process and wait for it: :func:`start_delivery` then ``wait()``."""
    return start_delivery(framework, folder, **settings).wait()


def resume_batches(splits, *, seed, epoch, steps, batch_size):
    """Return the first ``steps`` batches ``[(X (b, 64), y), ...]`` of ``epoch`` in the shared
    NumPy order (:func:`course_utils.data.epoch_order`): where training resumes after ``epoch``
    full epochs, the same in both frameworks."""
    from ..data import epoch_order

    order = epoch_order(len(splits.y_train), seed, epoch)
    return [
        (splits.X_train[idx], splits.y_train[idx])
        for idx in (order[i * batch_size : (i + 1) * batch_size] for i in range(steps))
    ]


def produce_torch(folder, settings):
    """What the PyTorch side ran (in its own process): train the CNN, save its files, then
    train a few steps more to report how training would have gone on."""
    import torch

    from ..data import load_digits, torch_loader
    from ..export import quiet_native

    seed, epochs, batch_size = settings["seed"], settings["epochs"], settings["batch_size"]
    splits = load_digits(seed=seed)
    model = training.load_torch(torch_cnn(), training.init_weights(CNN_SPEC, seed))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings["lr"], momentum=settings["momentum"]
    )
    step = training.torch_step(model, torch.nn.CrossEntropyLoss(), optimizer)
    images = splits.X_train.reshape(-1, 1, 8, 8)  # channels first
    loader = torch_loader(images, splits.y_train, batch_size, seed=seed, order="numpy")
    history = training.run_epochs(step, loader, epochs, progress=False)
    X_test = torch.from_numpy(splits.X_test.reshape(-1, 1, 8, 8))
    with torch.no_grad():
        logits = model(X_test).numpy()
    torch.save(model.state_dict(), folder / "state_dict.pt")
    np.savez(folder / "weights.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    np.savez(folder / "optimizer.npz", **torch_momentum(model, optimizer))
    with quiet_native():  # the exporter reports its progress; errors still raise
        torch.onnx.export(
            model,
            (X_test[:4],),
            folder / "model.onnx",
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    resume = resume_batches(
        splits, seed=seed, epoch=epochs, steps=settings["resume_steps"], batch_size=batch_size
    )
    resume_losses = [
        step(torch.from_numpy(X.reshape(-1, 1, 8, 8)), torch.from_numpy(y)) for X, y in resume
    ]
    return logits, history, resume_losses, {"torch": torch.__version__, "input_layout": "NCHW"}


def produce_tensorflow(folder, settings):
    """What the TensorFlow side ran (in its own process): train the CNN in Keras, save its
    files, then train a few steps more to report how training would have gone on."""
    import keras
    import tensorflow as tf
    import tf2onnx

    from ..data import load_digits, tf_dataset
    from ..export import quiet_native

    seed, epochs, batch_size = settings["seed"], settings["epochs"], settings["batch_size"]
    splits = load_digits(seed=seed)
    model = training.load_keras(keras_cnn(), training.init_weights(CNN_SPEC, seed))
    optimizer = keras.optimizers.SGD(learning_rate=settings["lr"], momentum=settings["momentum"])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    step = training.tape_step(model, loss_fn, optimizer)
    images = splits.X_train.reshape(-1, 8, 8, 1)  # channels last
    dataset = tf_dataset(images, splits.y_train, batch_size, seed=seed, order="numpy")
    history = training.run_epochs(step, dataset, epochs, progress=False)
    X_test = splits.X_test.reshape(-1, 8, 8, 1)
    logits = model(X_test, training=False).numpy()
    model.save(folder / "model.keras")
    np.savez(folder / "weights.npz", **keras_arrays(model))
    np.savez(folder / "optimizer.npz", **keras_momentum(model, optimizer))
    spec = (tf.TensorSpec([None, 8, 8, 1], tf.float32, name="pixels"),)

    @tf.function(input_signature=spec)
    def forward(pixels):
        return {"logits": model(pixels, training=False)}

    with quiet_native():  # tf2onnx logs every rewrite step; errors still raise
        tf2onnx.convert.from_function(
            forward, input_signature=spec, opset=17, output_path=str(folder / "model.onnx")
        )
    resume = resume_batches(
        splits, seed=seed, epoch=epochs, steps=settings["resume_steps"], batch_size=batch_size
    )
    resume_losses = [step(X.reshape(-1, 8, 8, 1), y) for X, y in resume]
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    return logits, history, resume_losses, {**versions, "input_layout": "NHWC"}


def keras_arrays(model):
    """Return a Keras model's weights as ``{"<layer>/<weight>": NumPy array}`` (``"conv1/kernel"``,
    ``"conv1/bias"``, ...), in the Keras layout, for the layers that hold weights."""
    import keras

    return {
        f"{layer.name}/{weight.name}": keras.ops.convert_to_numpy(weight)
        for layer in model.layers
        for weight in layer.weights
    }


def keras_momentum(model, optimizer):
    """Return a built Keras SGD optimizer's momentum for each of ``model``'s trainable weights,
    named as in :func:`keras_arrays` (``optimizer.momentums`` follows the order of
    ``model.trainable_variables``, which is layer by layer)."""
    import keras

    names = [f"{layer.name}/{w.name}" for layer in model.layers for w in layer.trainable_weights]
    return {
        name: keras.ops.convert_to_numpy(m)
        for name, m in zip(names, optimizer.momentums, strict=True)
    }


def set_keras_momentum(model, optimizer, momentums):
    """Build a Keras SGD ``optimizer`` for ``model`` and set its momentum from ``momentums``
    (``{"<layer>/<weight>": array}`` in the Keras layout, as :func:`keras_momentum` returns);
    return the optimizer."""
    optimizer.build(model.trainable_variables)
    names = [f"{layer.name}/{w.name}" for layer in model.layers for w in layer.trainable_weights]
    for name, slot in zip(names, optimizer.momentums, strict=True):
        slot.assign(momentums[name])
    return optimizer


def set_torch_momentum(model, optimizer, buffers):
    """Set a PyTorch SGD ``optimizer``'s momentum buffers from ``buffers`` (``{parameter name:
    array}`` in the PyTorch layout); return the optimizer."""
    import torch

    for name, param in model.named_parameters():
        optimizer.state[param]["momentum_buffer"] = torch.as_tensor(np.asarray(buffers[name]))
    return optimizer


def torch_momentum(model, optimizer):
    """Return a PyTorch SGD optimizer's momentum buffers as ``{parameter name: NumPy array}``."""
    return {
        name: optimizer.state[param]["momentum_buffer"].detach().cpu().numpy()
        for name, param in model.named_parameters()
    }


def _produce(framework, folder, settings):
    """Body of the child process started by :func:`start_delivery`."""
    from ..data import load_digits
    from ..quiet import quiet
    from ..seed import seed_everything

    quiet()
    folder = Path(folder)
    start = time.perf_counter()
    if framework == "torch":  # the imports first, timed apart from the training
        import torch  # noqa: F401
    else:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    produce = produce_torch if framework == "torch" else produce_tensorflow
    seed_everything(settings["seed"])
    logits, history, resume_losses, versions = produce(folder, settings)
    np.save(folder / "test_logits.npy", logits)
    y_test = load_digits(seed=settings["seed"]).y_test
    meta = {
        "framework": framework,
        **versions,
        "settings": settings,
        "steps": len(history.step_loss),
        "first_losses": history.step_loss[:10],
        "last_loss": history.step_loss[-1],
        "resume_losses": resume_losses,
        "test_accuracy": training.accuracy_from_logits(logits, y_test),
        "import_s": import_s,
        "train_s": time.perf_counter() - start,  # training, export and saving, imports excluded
        "frameworks_loaded": [name for name in FRAMEWORKS if name in sys.modules],
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


# ---------------------------------------------------------------- direct converters


# Converters between the frameworks that exist on PyPI, and what stops each one in the course's
# (re-checked against the newest release on the package index: onnx2tf 1.29.24 still pins TF 2.19)
# pinned environment (torch 2.13, TensorFlow 2.21, Keras 3): read from the requirements in each
# version's wheel metadata, from pip's resolver (litert-torch) and, for nobuco, which installs
# cleanly, from the error its import raises under Keras 3. A notebook prints this table beside
# the error the import gives.
CONVERTERS = [
    {
        "package": "onnx2torch",
        "version": "1.5.15",
        "direction": "ONNX -> PyTorch",
        "blocker": "requires torchvision, which the course does not install (a CUDA build risk)",
    },
    {
        "package": "onnx2tf",
        "version": "1.29.24",
        "direction": "ONNX -> TensorFlow / LiteRT",
        "blocker": "pins tensorflow==2.19.0, onnxruntime==1.23.0, numpy==1.26.4, onnx==1.19.1",
    },
    {
        "package": "onnx-tf",
        "version": "1.10.0",
        "direction": "ONNX -> TensorFlow",
        "blocker": "requires tensorflow-addons, which has reached its end of life",
    },
    {
        "package": "litert-torch",
        "version": "0.10.0",
        "direction": "PyTorch -> LiteRT (.tflite)",
        "blocker": "pip cannot resolve it: its xdsl needs typing-extensions<4.13, pinned at 4.16",
    },
    {
        "package": "nobuco",
        "version": "0.17.0",
        "direction": "PyTorch -> Keras",
        "blocker": "imports keras.src.engine, which exists only in Keras 2 (tf-keras)",
    },
]


def converter_table(direction=None):
    """Return the :data:`CONVERTERS` rows (those whose direction ends in ``direction`` when
    given, e.g. ``"PyTorch"``), each with ``installed``: the installed version or None."""
    from ..doctor import version

    rows = [
        {**row, "installed": version(row["package"])}
        for row in CONVERTERS
        if direction is None or direction in row["direction"].split("->")[-1]
    ]
    return rows


from .figures import TOLERANCES as TOLERANCES  # noqa: E402
from .figures import record_figures as record_figures  # noqa: E402
from .figures import verdict as verdict  # noqa: E402
from .traps import batchnorm_port as batchnorm_port  # noqa: E402
from .traps import batchnorm_state as batchnorm_state  # noqa: E402
from .traps import conv_weights as conv_weights  # noqa: E402
from .traps import describe_growth as describe_growth  # noqa: E402
from .traps import strided_same_port as strided_same_port  # noqa: E402

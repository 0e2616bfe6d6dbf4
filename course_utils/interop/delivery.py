"""A model from the other side: the course's CNN trained in a fresh process that imports only
one framework (:func:`start_delivery`, :func:`deliver`), the files it writes (:class:`Delivery`)
and what that process runs (:func:`produce_torch`, :func:`produce_tensorflow`, and
:func:`_produce`, the body of ``python -m course_utils.interop``).
"""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import training
from ..training import CNN_SPEC
from .fresh import PendingFresh, _child_env
from .weights import keras_arrays, keras_cnn, keras_momentum, torch_cnn, torch_momentum

FRAMEWORKS = ("torch", "tensorflow")

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

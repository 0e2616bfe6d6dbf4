"""Training the same model in both frameworks: one NumPy initialisation, layout converters,
a framework-neutral epoch loop with a progress bar, training steps, memory and log helpers.

The NumPy weights use the Keras layout: a dense kernel is ``(in, out)`` and a convolution
kernel is ``(height, width, in_channels, out_channels)`` (HWIO). PyTorch stores a ``Linear``
weight as ``(out, in)`` and a ``Conv2d`` weight as ``(out, in, height, width)`` (OIHW); the
converters below move between the two. Nothing here imports a framework until it is needed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import records

# Layer specs shared by both tracks: ("dense", n_in, n_out), ("conv", kh, kw, c_in, c_out), or
# ("dense", (H, W, C), n_out) for a dense layer that reads a flattened H x W x C feature map.
MLP_SPEC = [("dense", 64, 64), ("dense", 64, 10)]
CNN_SPEC = [("conv", 3, 3, 1, 8), ("conv", 3, 3, 8, 16), ("dense", (2, 2, 16), 10)]


@dataclass
class Layer:
    """One layer's parameters in the Keras layout; ``flat_from`` is the (H, W, C) map a dense
    layer reads after a Flatten, or None."""

    kind: str
    kernel: np.ndarray
    bias: np.ndarray
    flat_from: tuple | None = None


def init_weights(spec, seed=0):
    """Return a list of :class:`Layer` for ``spec``: Glorot-uniform kernels, zero biases, float32.

    Glorot uniform draws from U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), the Keras default.
    """
    rng = np.random.default_rng(seed)
    layers = []
    for kind, *dims in spec:
        flat_from = None
        if kind == "dense":
            n_in, n_out = dims
            if isinstance(n_in, tuple):
                flat_from, n_in = n_in, int(np.prod(n_in))
            shape, fan_in, fan_out = (n_in, n_out), n_in, n_out
        elif kind == "conv":
            kh, kw, c_in, c_out = dims
            shape, fan_in, fan_out = (kh, kw, c_in, c_out), kh * kw * c_in, kh * kw * c_out
        else:
            raise ValueError(f"unknown layer kind {kind!r}: use 'dense' or 'conv'")
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, size=shape).astype(np.float32)
        layers.append(Layer(kind, kernel, np.zeros(shape[-1], np.float32), flat_from))
    return layers


def linear_from_dense(kernel):
    """Return a PyTorch ``Linear`` weight ``(out, in)`` from a Keras ``Dense`` kernel ``(in, out)``."""
    return np.ascontiguousarray(np.asarray(kernel).T)


def dense_from_linear(weight):
    """Return a Keras ``Dense`` kernel ``(in, out)`` from a PyTorch ``Linear`` weight ``(out, in)``."""
    return np.ascontiguousarray(np.asarray(weight).T)


def oihw_from_hwio(kernel):
    """Return a PyTorch ``Conv2d`` weight (OIHW) from a Keras ``Conv2D`` kernel (HWIO)."""
    return np.ascontiguousarray(np.asarray(kernel).transpose(3, 2, 0, 1))


def hwio_from_oihw(weight):
    """Return a Keras ``Conv2D`` kernel (HWIO) from a PyTorch ``Conv2d`` weight (OIHW)."""
    return np.ascontiguousarray(np.asarray(weight).transpose(2, 3, 1, 0))


def chw_rows_from_hwc(kernel, hwc):
    """Reorder a dense kernel's input rows from a channels-last flatten (H, W, C) to a
    channels-first one (C, H, W); returns a kernel of the same shape.

    Keras flattens an (H, W, C) map with the channel varying fastest; PyTorch flattens
    (C, H, W) with the width varying fastest. Same numbers, different order of inputs.
    """
    h, w, c = hwc
    kernel = np.asarray(kernel)
    return np.ascontiguousarray(
        kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    )


def hwc_rows_from_chw(kernel, hwc):
    """Reorder a dense kernel's input rows from a channels-first flatten (C, H, W) back to a
    channels-last one (H, W, C): the inverse of :func:`chw_rows_from_hwc`; same shape."""
    h, w, c = hwc
    kernel = np.asarray(kernel)
    return np.ascontiguousarray(
        kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    )


def torch_params(layer):
    """Return ``(weight, bias)`` NumPy arrays of one :class:`Layer` in the PyTorch layout."""
    if layer.kind == "conv":
        return oihw_from_hwio(layer.kernel), layer.bias
    kernel = (
        layer.kernel
        if layer.flat_from is None
        else chw_rows_from_hwc(layer.kernel, layer.flat_from)
    )
    return linear_from_dense(kernel), layer.bias


def _torch_layers(model):
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]


def load_torch(model, weights):
    """Copy NumPy ``weights`` (a list of :class:`Layer`) into a PyTorch model; return the model.

    The model's ``Linear`` and ``Conv2d`` modules are matched to ``weights`` in definition order.
    """
    import torch

    modules = _torch_layers(model)
    if len(modules) != len(weights):
        raise ValueError(
            f"the model has {len(modules)} Linear/Conv2d modules, the weights {len(weights)} layers"
        )
    with torch.no_grad():
        for module, layer in zip(modules, weights, strict=True):
            weight, bias = torch_params(layer)
            if tuple(module.weight.shape) != weight.shape:
                raise ValueError(
                    f"{module}: weight shape {tuple(module.weight.shape)} != {weight.shape}"
                )
            module.weight.copy_(torch.from_numpy(weight))
            module.bias.copy_(torch.from_numpy(bias))
    return model


def load_keras(model, weights):
    """Copy NumPy ``weights`` into a built Keras model (its layers that hold weights, in order);
    return the model."""
    layers = [layer for layer in model.layers if layer.weights]
    if len(layers) != len(weights):
        raise ValueError(
            f"the model has {len(layers)} layers with weights, the weights {len(weights)} layers"
        )
    for keras_layer, layer in zip(layers, weights, strict=True):
        keras_layer.set_weights([layer.kernel, layer.bias])
    return model


def torch_weights(model, like):
    """Read a PyTorch model's parameters back as :class:`Layer` objects in the Keras layout
    (``like`` gives the kinds and flatten shapes, e.g. the list :func:`init_weights` returned)."""
    out = []
    for module, ref in zip(_torch_layers(model), like, strict=True):
        weight = module.weight.detach().cpu().numpy()
        if ref.kind == "conv":
            kernel = hwio_from_oihw(weight)
        else:
            kernel = dense_from_linear(weight)
            if ref.flat_from is not None:
                kernel = hwc_rows_from_chw(kernel, ref.flat_from)
        out.append(Layer(ref.kind, kernel, module.bias.detach().cpu().numpy(), ref.flat_from))
    return out


def keras_weights(model, like):
    """Read a Keras model's weights back as :class:`Layer` objects (``like`` as in :func:`torch_weights`)."""
    layers = [layer for layer in model.layers if layer.weights]
    return [
        Layer(ref.kind, *(np.asarray(w) for w in layer.get_weights()), ref.flat_from)
        for layer, ref in zip(layers, like, strict=True)
    ]


def max_difference(a, b):
    """Return the largest absolute difference between two lists of :class:`Layer`."""
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for la, lb in zip(a, b, strict=True)
        for x, y in ((la.kernel, lb.kernel), (la.bias, lb.bias))
    )


# float32 rounding of these small models' weights after a few steps: about 1e-8 to 1e-7, its
# digits different from CPU to CPU (1.5e-08 on one, 3.0e-08 under AVX2 kernels)
ROUNDING = 1e-6


def shown(diff, resolution=ROUNDING):
    """A difference as printed: ``3.3e-02``, or ``below 1e-06`` where only float32 rounding is left."""
    return records.shown(diff, resolution)


# ---------------------------------------------------------------- training steps and the loop


def torch_step(model, loss_fn, optimizer):
    """Return ``step(X, y) -> float``: one PyTorch training step (zero_grad, forward, backward, step)."""

    def step(X, y):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def tape_step(model, loss_fn, optimizer, compile=True, jit_compile=None):
    """Return ``step(X, y) -> float``: one Keras training step with ``tf.GradientTape``.

    ``compile=True`` wraps the step in ``tf.function`` (traced once per input signature);
    ``jit_compile=True`` also compiles that graph with XLA (None: `tf.function`'s own default).
    """
    import tensorflow as tf

    def step(X, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(X, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    compiled = tf.function(step, jit_compile=jit_compile) if compile else step
    return lambda X, y: float(compiled(X, y))


@dataclass
class History:
    """What :func:`run_epochs` saw: the loss of every step, and per epoch the mean training loss
    and the evaluation result (e.g. validation accuracy) when an ``evaluate`` was given."""

    step_loss: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    epoch_eval: list = field(default_factory=list)


def run_epochs(
    step, make_batches, epochs, *, evaluate=None, log=None, progress=True, desc="training"
):
    """Run ``epochs`` passes of ``step(X, y) -> loss`` over the batches; return a :class:`History`.

    ``make_batches`` is the data pipeline (a DataLoader or a tf.data.Dataset: iterated once per
    epoch). ``evaluate()`` is called after each epoch and its value stored. ``log(name, value,
    step)`` receives ``"loss/train"`` every step and ``"accuracy/val"`` every epoch (TensorBoard).
    ``progress`` shows a tqdm bar over all steps with the running loss.
    """
    from tqdm.auto import tqdm

    history = History()
    try:
        total = epochs * len(make_batches)
    except TypeError:  # a tf.data.Dataset from a generator has no known length
        total = None
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=True)
    for epoch in range(epochs):
        losses = []
        for X, y in make_batches:
            loss = float(step(X, y))
            losses.append(loss)
            history.step_loss.append(loss)
            if log:
                log("loss/train", loss, len(history.step_loss))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.3f}")
        history.epoch_loss.append(float(np.mean(losses)))
        if evaluate is not None:
            history.epoch_eval.append(float(evaluate()))
            if log:
                log("accuracy/val", history.epoch_eval[-1], epoch + 1)
    bar.close()
    return history


def accuracy_from_logits(logits, y):
    """Return the fraction of rows whose largest logit is at the label (NumPy in, float out)."""
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(y)))


# ---------------------------------------------------------------- memory and files


@dataclass
class MemoryUse:
    """Memory over one run of a function, in bytes: process resident set (RSS) before, peak
    and after, and the accelerator allocator's peak when one was used (else None)."""

    rss_before: int
    rss_peak: int
    rss_after: int
    peak_was_reset: bool
    accelerator_peak: int | None = None
    accelerator_kind: str | None = None
    result: object = field(default=None, repr=False)

    @property
    def rss_delta(self):
        """Peak RSS during the run minus RSS just before it: what the run added at its worst."""
        return self.rss_peak - self.rss_before

    def mib(self, name):
        """Return one of the byte counts (``"rss_delta"``, ``"rss_peak"``, ...) in MiB."""
        value = getattr(self, name)
        return None if value is None else value / 2**20


def measure_memory(fn, device="cpu"):
    """Run ``fn()`` and return a :class:`MemoryUse` (its return value in ``.result``).

    The process peak mark is reset first (Linux), so the peak belongs to this run; where the
    OS cannot reset it, ``peak_was_reset`` is False and the peak may predate the run. On a
    CUDA device (PyTorch ``torch.device`` or TensorFlow ``"/GPU:0"``) the allocator's peak is
    also read. RSS counts the whole process: the framework runtime, not only the tensors.
    """
    from .bench import process_peak_rss, process_rss, reset_process_peak

    text = str(device)
    kind = (
        "tf-gpu" if text.startswith("/GPU") else ("torch-cuda" if text.startswith("cuda") else None)
    )
    if kind == "torch-cuda":
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    elif kind == "tf-gpu":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats(text.strip("/"))
    before = process_rss()
    reset = reset_process_peak()
    result = fn()
    peak, after = process_peak_rss(), process_rss()
    accel = None
    if kind == "torch-cuda":
        import torch

        torch.cuda.synchronize(device)
        accel = torch.cuda.max_memory_allocated(device)
    elif kind == "tf-gpu":
        import tensorflow as tf

        accel = tf.config.experimental.get_memory_info(text.strip("/"))["peak"]
    return MemoryUse(before, max(peak, before), after, reset, accel, kind, result)


def logdir_layout(logdir):
    """Return ``{sub-folder: number of TensorBoard event files}`` under ``logdir``, sorted.

    Event file names hold a timestamp and the host name, so the course prints only this.
    """
    logdir = Path(logdir)
    counts = {}
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        key = path.parent.relative_to(logdir).as_posix()
        counts[key] = counts.get(key, 0) + 1
    return counts


def probe_training_memory(
    framework, *, epochs=5, batch_size=32, lr=0.1, seed=0, device="cpu", timeout=600
):
    """Train the course's MLP in a fresh Python process that imports only ``framework``
    (``"torch"`` or ``"tensorflow"``) and return what it measured, in MiB::

        {"framework", "device", "runtime_rss": RSS after importing the framework and building
         the data and model, "train_peak_rss": process peak during training, "train_rss_delta":
         the difference, "accelerator_peak": allocator peak or None, "peak_was_reset": bool}

    A fresh process makes the two frameworks' figures comparable: nothing else this notebook
    imported or allocated (another framework, earlier training runs) is counted.
    """
    import json
    import subprocess
    import sys

    if framework not in ("torch", "tensorflow"):
        raise ValueError("framework must be 'torch' or 'tensorflow'")
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "device": str(device),
    }
    done = subprocess.run(
        [sys.executable, "-m", "course_utils.training", framework, json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _probe(framework, settings):
    """Body of :func:`probe_training_memory`, run in the child process; prints one JSON line."""
    import json

    from .bench import process_rss
    from .data import load_digits, tf_dataset, torch_loader
    from .quiet import quiet

    quiet()
    epochs, batch_size, lr, seed = (settings[k] for k in ("epochs", "batch_size", "lr", "seed"))
    splits = load_digits(seed=seed)
    weights = init_weights(MLP_SPEC, seed)
    if framework == "torch":
        import torch

        device = torch.device(settings["device"])
        model = torch.nn.Sequential(  # the notebooks' MLP, dropout rate 0 as there
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Linear(64, 10)
        )
        model = load_torch(model.to(device), weights)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        inner = torch_step(model, torch.nn.CrossEntropyLoss(), optimizer)

        def step(X, y):
            return inner(X.to(device), y.to(device))

        pipeline = torch_loader(
            splits.X_train, splits.y_train, batch_size, seed=seed, order="numpy"
        )
    else:
        import keras
        import tensorflow as tf

        device = settings["device"]
        with tf.device(device):
            model = keras.Sequential(
                [
                    keras.Input((64,)),
                    keras.layers.Dense(64, activation="relu"),
                    keras.layers.Dropout(0.0),  # the notebooks' MLP, dropout rate 0 as there
                    keras.layers.Dense(10),
                ]
            )
            load_keras(model, weights)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        step = tape_step(model, loss_fn, keras.optimizers.SGD(learning_rate=lr))
        pipeline = tf_dataset(splits.X_train, splits.y_train, batch_size, seed=seed, order="numpy")
    runtime = process_rss()
    memory = measure_memory(lambda: run_epochs(step, pipeline, epochs, progress=False), device)
    mib = 2**-20
    print(
        json.dumps(
            {
                "framework": framework,
                "device": str(device),
                "runtime_rss": runtime * mib,
                "train_peak_rss": memory.rss_peak * mib,
                "train_rss_delta": memory.rss_delta * mib,
                "accelerator_peak": memory.mib("accelerator_peak"),
                "peak_was_reset": memory.peak_was_reset,
            }
        )
    )


if __name__ == "__main__":
    import json
    import sys

    _probe(sys.argv[1], json.loads(sys.argv[2]))

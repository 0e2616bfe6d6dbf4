"""TensorFlow's side of the claims lab: every experiment of 09_claims_lab, written in TensorFlow.

:mod:`course_utils.claims_torch` has the same functions, with the same names and arguments, in
PyTorch. The harness (:mod:`course_utils.claims_worker`) calls them in a fresh process that
imports only TensorFlow; a notebook can call them too. Every experiment returns plain JSON-ready
data (the structures :mod:`course_utils.claims` documents). This module imports TensorFlow, so
``import course_utils`` does not import it: ``from course_utils import claims_tf`` (after
``cu.quiet()``).
"""

import keras
import numpy as np
import tensorflow as tf

from . import compiling, cpu, data, training
from .bench import benchmark
from .claims import experiments as claims
from .claims.catalogue import MODES as _MODES
from .memory import memory_figures

# ``claims`` is the plan and inputs both sides share (claims.experiments): the code the notebooks
# show reads ``claims.<name>`` as a notebook does, and each is ``course_utils.claims.<name>`` too.
FRAMEWORK = "tensorflow"
MODES = _MODES[FRAMEWORK]


def configure(threads, device="auto"):
    """Use ``threads`` CPU threads and pick the device; return the setup facts (a dict).

    Call it before TensorFlow runs anything: thread pools are fixed when the runtime starts.
    """
    from .devices import tf_device

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    chosen = tf_device(device)
    backends = cpu.tf_backends()
    return {
        "version": tf.__version__,
        "keras": keras.__version__,
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "interop_threads": backends["interop_threads"],
        "device": chosen,
        "accelerator": None if chosen.startswith("/CPU") else chosen,
        "kernels": f"oneDNN custom ops {'on' if backends['onednn_ops'] else 'off'}, {backends['kernels']}",
    }


# ---------------------------------------------------------------- one model, one step


def cnn(size):
    """C4's small CNN (:func:`course_utils.claims.cnn_spec`), channels last: two 3x3
    convolutions with ReLU and 2x2 max pooling, then a dense head."""
    c1, c2 = size["channels"]
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((size["image"], size["image"], 3)),
            L.Conv2D(c1, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(c2, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10),
        ]
    )


def make_model(size, seed, device):
    """The model ``size`` describes, with the shared NumPy weights: the course's MLP
    ({"d_in", "hidden", "depth"}) or C4's CNN ({"kind": "cnn", "image", "channels"})."""
    with tf.device(device):
        if size.get("kind") == "cnn":
            model = cnn(size)
        else:
            model = compiling.keras_mlp(size["d_in"], size["hidden"], depth=size["depth"])
    weights = training.init_weights(claims.model_spec(size), seed)
    return training.load_keras(model, weights)


def make_step(model, mode, lr):
    """One SGD training step: eager, in a ``tf.function`` ("graph"), or compiled by XLA ("xla")."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    return training.tape_step(
        model,
        loss_fn,
        optimizer,
        compile=mode != "eager",
        jit_compile=True if mode == "xla" else None,
    )


def data_batch(batch, device, size=None):
    """The first ``batch`` training images of the digits and their labels, on ``device``; for
    C4's CNN (``size``), its fixed NumPy batch, channels last."""
    if size is not None and size.get("kind") == "cnn":
        images, labels = claims.cnn_batch(size)
        with tf.device(device):
            return tf.constant(images), tf.constant(labels)
    splits = data.load_digits(seed=0)
    with tf.device(device):
        return tf.constant(splits.X_train[:batch]), tf.constant(splits.y_train[:batch])


# ---------------------------------------------------------------- C3, C4: step time


def step_time(size, mode, lr, seed, device, warmup, repeats):
    """Time the first training step of a fresh model (tracing, compiling included) and the steady state."""
    X, y = data_batch(size["batch"], device, size)
    step = make_step(make_model(size, seed, device), mode, lr)
    with tf.device(device):
        first, steady = compiling.first_call_and_steady(
            lambda: step(X, y), device=device, warmup=warmup, repeats=repeats
        )
    return {"first_s": first, "times": steady.times}


# ---------------------------------------------------------------- C5, C6: memory


def training_memory(size, mode, steps, lr, seed, device):
    """Train a fresh model ``steps`` steps and return its memory figures (MiB)."""
    X, y = data_batch(size["batch"], device)
    model = make_model(size, seed, device)
    step = make_step(model, mode, lr)
    with tf.device(device):
        return memory_figures(lambda: step(X, y), steps, device, claims.parameter_count(size))


# ---------------------------------------------------------------- C7: accuracy over seeds


def seed_accuracies(seeds, epochs, batch, lr, device):
    """Train 05's MLP from each seed's shared weights on that seed's batches; test accuracies."""
    splits = data.load_digits(seed=0)
    accuracies = []
    for seed in seeds:
        model = make_model(claims.ACCURACY_SIZE, seed, device)
        step = make_step(model, "graph", lr)
        dataset = data.tf_dataset(splits.X_train, splits.y_train, batch, seed=seed, order="numpy")
        with tf.device(device):
            training.run_epochs(step, dataset, epochs, progress=False)
            logits = model(splits.X_test, training=False).numpy()
        accuracies.append(training.accuracy_from_logits(logits, splits.y_test))
    return {"seeds": list(seeds), "test_accuracy": accuracies, "n_test": len(splits.y_test)}


# ---------------------------------------------------------------- C9: the same operations


def op_times(shapes, device, warmup, repeats, seed=0):
    """Time each operation of ``shapes`` on the same inputs as PyTorch (TensorFlow's layouts)."""
    inputs = claims.op_inputs(shapes, seed)
    with tf.device(device):
        a, b = map(tf.constant, inputs["matmul"])
        x, w = map(tf.constant, inputs["conv2d"])  # NHWC image, HWIO kernel
        u, v = map(tf.constant, inputs["add_relu"])
        s = tf.constant(inputs["softmax"][0])
        ops = {
            "matmul": lambda: tf.matmul(a, b),
            "conv2d": lambda: tf.nn.conv2d(x, w, strides=1, padding="SAME"),
            "add_relu": lambda: tf.nn.relu(u + v),
            "sum": lambda: tf.reduce_sum(u),
            "softmax": lambda: tf.nn.softmax(s, axis=1),
        }
        return {
            name: {"times": benchmark(fn, device=device, warmup=warmup, repeats=repeats).times}
            for name, fn in ops.items()
        }


# ---------------------------------------------------------------- C1: define-by-run


def grow_until(x, limit=10.0):
    """Double ``x`` until its norm reaches ``limit``: how many times depends on the values."""
    steps = 0
    while tf.norm(x) < limit:
        x = x * 2
        steps += 1
    return tf.reduce_sum(x), steps


def define_by_run(scales=(1.0, 0.01)):
    """Run :func:`grow_until` eagerly on two inputs of one shape, then as one ``tf.function``."""
    steps, grads = [], []
    for scale in scales:
        x = tf.fill([4], scale)
        with tf.GradientTape() as tape:  # records the operations as they run
            tape.watch(x)
            out, n = grow_until(x)
        steps.append(int(n))
        grads.append(int(tape.gradient(out, x)[0]))  # 2 ** steps: exact
    graph_fn = tf.function(grow_until)
    for scale in scales:
        graph_fn(tf.fill([4], scale))
    graph = graph_fn.get_concrete_function(tf.TensorSpec([4], tf.float32)).graph
    op_types = {op.type for op in graph.get_operations()}
    return {
        "eager_by_default": tf.executing_eagerly(),
        "loop_steps": steps,
        "gradients": grads,
        "graph_follows_data": steps[0] != steps[1] and grads[0] != grads[1],
        "function_traces": graph_fn.experimental_get_tracing_count(),
        "function_has_loop_op": bool(op_types & {"While", "StatelessWhile"}),
        "function_ops": len(graph.get_operations()),
    }


# ---------------------------------------------------------------- C2: debugging inside


class DebugBlock(keras.Model):
    """A dense layer with ReLU, and the two debugging tools people reach for inside ``call``."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x):
        h = tf.nn.relu(self.dense(x))
        print("h =", h)  # an ordinary print
        breakpoint()  # an ordinary breakpoint: pdb stops here with h in scope
        return tf.reduce_sum(h)


PDB_COMMANDS = ["p type(h).__name__", "p float(tf.reduce_sum(h))"]


def debugging_inside(calls=3):
    """Call :class:`DebugBlock` eagerly and as a ``tf.function``; count what print and pdb showed."""
    block = DebugBlock()
    block.build((None, 4))
    training.load_keras(block, claims.debug_weights())
    x = tf.constant(claims.DEBUG_INPUT)
    modes = {"eager": block, "graph": tf.function(block)}
    return {
        mode: claims.debug_session(lambda fn=fn: fn(x), calls, PDB_COMMANDS)
        for mode, fn in modes.items()
    }


# ---------------------------------------------------------------- C8: moving to a GPU


def train(make_model, X, y, steps=5, lr=0.1):
    """Train where TensorFlow places it (a GPU when there is one); return the losses."""
    model = make_model()
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(X, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        losses.append(float(loss))
    return losses


def train_on(device, make_model, X, y, steps=5, lr=0.1):
    """The same training pinned to ``device``: what changes to choose the device yourself."""
    with tf.device(device):
        model = make_model()
        optimizer = keras.optimizers.SGD(learning_rate=lr)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        losses = []
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(X, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            losses.append(float(loss))
    return losses


def gpu_code_change(device):
    """Count the lines :func:`train_on` changes from :func:`train`, run both, compare losses."""
    X, y = data_batch(32, "/CPU:0")

    def make_mlp():
        return make_model(claims.ACCURACY_SIZE, 0, device)

    before, after = train(make_mlp, X, y), train_on(device, make_mlp, X, y)
    return {
        **claims.changed_lines(train, train_on),
        "device": device,
        "same_losses": bool(np.allclose(before, after, rtol=1e-4)),
        "unchanged_code_places_on": tf.Variable(0.0).device.rsplit("device:", 1)[-1].split(":")[0],
    }


# ---------------------------------------------------------------- C11: eager to graph


def branch(x):
    if tf.reduce_sum(x) > 0:  # a data-dependent branch
        return x * 2
    return -x


def python_loop(x):
    parts = []
    for i in range(3):
        parts.append(x * i)
    return tf.reduce_sum(tf.stack(parts), axis=0)


def numpy_constant(x):
    return x * float(np.sqrt(2.0))


def keyword_options(x, **options):
    return x * options.get("scale", 2.0)


def mixed_dict(x):
    config = {"scale": 2.0, "name": "double"}
    return x * config["scale"]


def try_except(x):
    try:
        return x / tf.reduce_sum(x)
    except ZeroDivisionError:
        return x


EXAMPLES = (branch, python_loop, numpy_constant, keyword_options, mixed_dict, try_except)


def _works(make, fn, inputs):
    """True when ``make(fn)`` builds and gives eager's result on every input."""
    try:
        graph = make(fn)
        return all(np.allclose(graph(x), fn(x)) for x in inputs)
    except Exception:
        return False


def graph_transition():
    """Turn the same ordinary Python functions into graphs with ``tf.function``."""
    inputs = [tf.constant([1.0, 2.0, 3.0]), tf.constant([-1.0, -2.0, -4.0])]
    return {
        "examples": [f.__name__ for f in EXAMPLES],
        "function_ok": [f.__name__ for f in EXAMPLES if _works(tf.function, f, inputs)],
    }


# ---------------------------------------------------------------- C12: distributed scripts

# C12: the complete script that trains 05's MLP on the digits in one process, and the same
# training data-parallel with tf.distribute, by both of TensorFlow's routes: Keras fit and a
# custom training loop. MirroredStrategy uses every local GPU (one CPU replica without one);
# MultiWorkerMirroredStrategy with TF_CONFIG spans machines.
SINGLE_SCRIPT = """
import keras
import tensorflow as tf
from course_utils import data


def main():
    splits = data.load_digits(seed=0)
    dataset = tf.data.Dataset.from_tensor_slices((splits.X_train, splits.y_train))
    dataset = dataset.shuffle(len(splits.y_train)).batch(32)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=0.1)

    @tf.function
    def step(X, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(X, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    for epoch in range(2):
        for X, y in dataset:
            step(X, y)
    print("done")


if __name__ == "__main__":
    main()
"""

DISTRIBUTED_LOOP_SCRIPT = """
import keras
import tensorflow as tf
from course_utils import data


def main():
    strategy = tf.distribute.MirroredStrategy()
    splits = data.load_digits(seed=0)
    dataset = tf.data.Dataset.from_tensor_slices((splits.X_train, splits.y_train))
    dataset = dataset.shuffle(len(splits.y_train)).batch(32)
    dataset = strategy.experimental_distribute_dataset(dataset)
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
        )
        loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="none"
        )
        optimizer = keras.optimizers.SGD(learning_rate=0.1)

    def replica_step(X, y):
        with tf.GradientTape() as tape:
            per_example = loss_fn(y, model(X, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=32)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    @tf.function
    def step(X, y):
        strategy.run(replica_step, args=(X, y))

    for epoch in range(2):
        for X, y in dataset:
            step(X, y)
    print("done")


if __name__ == "__main__":
    main()
"""

SINGLE_FIT_SCRIPT = """
import keras
import tensorflow as tf
from course_utils import data


def main():
    splits = data.load_digits(seed=0)
    dataset = tf.data.Dataset.from_tensor_slices((splits.X_train, splits.y_train))
    dataset = dataset.shuffle(len(splits.y_train)).batch(32)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(dataset, epochs=2, verbose=0)
    print("done")


if __name__ == "__main__":
    main()
"""

DISTRIBUTED_FIT_SCRIPT = """
import keras
import tensorflow as tf
from course_utils import data


def main():
    strategy = tf.distribute.MirroredStrategy()
    splits = data.load_digits(seed=0)
    dataset = tf.data.Dataset.from_tensor_slices((splits.X_train, splits.y_train))
    dataset = dataset.shuffle(len(splits.y_train)).batch(32)
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    model.fit(dataset, epochs=2, verbose=0)
    print("done")


if __name__ == "__main__":
    main()
"""

DISTRIBUTED_ROUTES = {
    "custom loop (MirroredStrategy)": (SINGLE_SCRIPT, DISTRIBUTED_LOOP_SCRIPT),
    "Keras fit (MirroredStrategy)": (SINGLE_FIT_SCRIPT, DISTRIBUTED_FIT_SCRIPT),
}


def distributed_scripts():
    """C12: count the complete scripts, one process vs data-parallel, for each route."""
    return claims.script_counts(DISTRIBUTED_ROUTES)

"""The TensorFlow checkers of 07_distributed: scale each replica's loss so that the gradients
are averaged, and set up a model for data-parallel training. They run in this process under a
``MirroredStrategy`` over the notebook's logical CPUs.
"""

import contextlib

import numpy as np

from ...checks import Mismatch, NotSolved, exercise
from .common import CHECK_BATCH, CHECK_LR, CHECK_STEPS, _call, _check_data, _is_stub

# ---------------------------------------------------------------- TensorFlow, in this process


@contextlib.contextmanager
def _tf_quiet():
    """Keep TensorFlow's INFO lines (strategies write many in Jupyter) out of the check."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _strategy():
    """A MirroredStrategy over this process's logical CPUs (2 if the notebook made them)."""
    import tensorflow as tf

    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(cpus[:2])


def _tf_reference(X, y, weights, global_batch):
    from ...distributed import tf_train

    return tf_train(X, y, weights, CHECK_STEPS, global_batch, CHECK_LR)[1]


def _tf_close(got, want, tol=1e-5):
    return all(
        np.allclose(g.kernel, w.kernel, rtol=tol, atol=tol)
        and np.allclose(g.bias, w.bias, rtol=tol, atol=tol)
        for g, w in zip(got, want, strict=True)
    )


def _tf_max_difference(got, want):
    from ...training import max_difference

    return max_difference(got, want)


LOSS_HINT_TF = (
    "The optimizer sums the replicas' gradients, so each replica's loss must be divided by "
    "the global batch size: tf.nn.compute_average_loss(per_example_loss, "
    "global_batch_size=global_batch_size)."
)


def _check_replica_loss_value(replica_loss):
    """The loss of one replica holding 6 of a global batch of 12 examples, on fixed logits."""
    import tensorflow as tf

    rng = np.random.default_rng(8)
    logits = rng.standard_normal((6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    shifted = logits - logits.max(axis=1, keepdims=True)
    per_example = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(6), labels]
    got = _call(replica_loss, tf.constant(labels), tf.constant(logits), 12, what="replica_loss")
    shape = getattr(got, "shape", None)
    if shape is None or len(shape) != 0:
        raise Mismatch(
            "replica_loss should return the replica's loss as one number",
            "a scalar tensor (shape ())",
            f"{type(got).__name__} of shape {shape}",
            LOSS_HINT_TF,
        )
    value, want = float(got), float(per_example.sum() / 12)
    if abs(value - per_example.mean()) < 1e-5:
        raise Mismatch(
            "the loss of a replica holding 6 of a global batch of 12 examples",
            f"{want:.5f} (the sum of its 6 losses / 12)",
            f"{value:.5f}, the mean over its own 6 examples: with 2 replicas the optimizer's "
            "sum would make every step twice too large",
            LOSS_HINT_TF,
        )
    if abs(value - want) > 1e-5 * max(1.0, abs(want)):
        raise Mismatch(
            "the loss of a replica holding 6 of a global batch of 12 examples",
            f"{want:.5f} (the sum of its 6 cross-entropies / 12)",
            f"{value:.5f}",
            LOSS_HINT_TF,
        )


@exercise(
    "07_distributed.tensorflow.replica_loss",
    "Scale each replica's loss so that the gradients are averaged",
    hint=LOSS_HINT_TF,
)
def replica_loss_tf(replica_loss):
    with _tf_quiet():
        return _replica_loss_tf(replica_loss)


def _replica_loss_tf(replica_loss):
    import keras
    import tensorflow as tf

    from ...distributed import keras_mlp
    from ...training import MLP_SPEC, init_weights

    if _is_stub(replica_loss):
        raise NotSolved
    _check_replica_loss_value(replica_loss)
    strategy = _strategy()
    n = strategy.num_replicas_in_sync
    X, y = _check_data(n)
    weights = init_weights(MLP_SPEC, seed=3)
    global_batch = CHECK_BATCH * n
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def train(loss_of):
        with strategy.scope():
            model = keras_mlp(weights)
            optimizer = keras.optimizers.SGD(learning_rate=CHECK_LR)
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((X, y)).batch(global_batch)
        )

        @tf.function
        def step(Xb, yb):
            def replica_step(Xb, yb):
                with tf.GradientTape() as tape:
                    loss = loss_of(yb, model(Xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

            strategy.run(replica_step, args=(Xb, yb))

        for Xb, yb in dataset:
            step(Xb, yb)
        from ...distributed import _keras_weights

        return _keras_weights(model, weights)

    not_scalar = {}

    def students(labels, logits):
        loss = replica_loss(labels, logits, global_batch)
        shape = getattr(loss, "shape", None)
        if shape is None or shape.rank != 0:
            not_scalar["got"] = f"{type(loss).__name__} of shape {shape}"
            raise ValueError("replica_loss did not return a scalar")
        return loss

    try:
        got = _call(lambda: train(students), what="training with your replica_loss")
    except ValueError:
        if not_scalar:
            raise Mismatch(
                "replica_loss should return the replica's loss as one number",
                "a scalar tensor (shape ())",
                not_scalar["got"],
                LOSS_HINT_TF,
            ) from None
        raise
    want = _tf_reference(X, y, weights, global_batch)
    if _tf_close(got, want):
        return (
            f"{CHECK_STEPS} steps on {n} replicas give the parameters of one device with the "
            f"global batch of {global_batch} (to 1e-5)."
        )
    too_big = train(lambda labels, logits: tf.reduce_mean(loss_fn(labels, logits)))
    if n > 1 and _tf_close(got, too_big):
        raise Mismatch(
            "the update is as if the gradients were summed over the replicas, not averaged",
            f"the parameters of one device with batch {global_batch}",
            f"{n} times too large a step (each replica's mean loss is summed by the optimizer)",
            LOSS_HINT_TF,
        )
    raise Mismatch(
        f"after {CHECK_STEPS} steps the parameters differ from one device with the global batch",
        "max |difference| < 1e-5",
        f"max |difference| = {_tf_max_difference(got, want):.3g}",
        LOSS_HINT_TF,
    )


SETUP_HINT_TF = (
    "Create the model and compile it inside `with strategy.scope():` "
    "(model = cu.distributed.keras_mlp(weights); model.compile(optimizer=..., loss=...)), "
    "then return it."
)


@exercise(
    "07_distributed.tensorflow.setup",
    "Set up a model for data-parallel training (TensorFlow)",
    hint=SETUP_HINT_TF,
)
def setup_tf(make_model):
    with _tf_quiet():
        return _setup_tf(make_model)


def _setup_tf(make_model):
    import tensorflow as tf

    from ...distributed import _keras_weights
    from ...training import MLP_SPEC, init_weights

    if _is_stub(make_model):
        raise NotSolved
    strategy = _strategy()
    n = strategy.num_replicas_in_sync
    X, y = _check_data(n)
    weights = init_weights(MLP_SPEC, seed=4)
    global_batch = CHECK_BATCH * n
    model = _call(make_model, strategy, weights, CHECK_LR, what="make_model")
    variables = getattr(model, "trainable_variables", None)
    if not variables:
        raise Mismatch(
            "make_model should return a built Keras model",
            "a keras.Model with weights",
            type(model).__name__,
            SETUP_HINT_TF,
        )
    mirrored = [
        isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in variables
    ]
    if not all(mirrored):
        raise Mismatch(
            "the model's variables are not distributed: it would train on one device only",
            "MirroredVariable (one copy per replica, kept in sync)",
            type(getattr(variables[mirrored.index(False)], "value", None)).__name__,
            "Variables become mirrored when they are created inside `with strategy.scope():`; "
            "build the model there (training outside the scope runs silently on one device).",
        )
    if getattr(model, "optimizer", None) is None:
        raise Mismatch(
            "the model is not compiled",
            "a compiled model (optimizer and loss)",
            "no optimizer",
            SETUP_HINT_TF,
        )
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(global_batch)
    try:
        _call(
            lambda: model.fit(dataset, epochs=1, shuffle=False, verbose=0),
            what="model.fit with your model",
        )
    except AssertionError:
        raise Mismatch(
            "model.fit failed under the strategy",
            "fit runs",
            "AssertionError (a model compiled in the scope but built outside it)",
            SETUP_HINT_TF,
        ) from None
    got = _keras_weights(model, weights)
    want = _tf_reference(X, y, weights, global_batch)
    if not _tf_close(got, want):
        raise Mismatch(
            f"after {CHECK_STEPS} steps of fit the parameters differ from one device",
            "max |difference| < 1e-5 (plain SGD with the given learning rate)",
            f"max |difference| = {_tf_max_difference(got, want):.3g}",
            "Compile with keras.optimizers.SGD(learning_rate=lr) and "
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True).",
        )
    return (
        f"mirrored variables on {n} replicas; {CHECK_STEPS} steps of fit give the parameters "
        "of one device with the global batch."
    )

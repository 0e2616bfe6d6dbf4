"""Checkers for 05_training: a training step, converting dense weights between layouts, accuracy."""

import numpy as np

from ..checks import Mismatch, exercise, expect_close, expect_equal
from ..training import MLP_SPEC, init_weights, load_keras, load_torch


def _batches(n_steps=3, batch_size=16, seed=3):
    """A few fixed batches of digits: [(X float32 (b, 64), y int64 (b,)), ...]."""
    from ..data import load_digits

    splits = load_digits(seed=0)
    order = np.random.default_rng(seed).permutation(len(splits.y_train))
    return [
        (splits.X_train[idx], splits.y_train[idx])
        for idx in np.array_split(order[: n_steps * batch_size], n_steps)
    ]


# ---------------------------------------------------------------- Exercise 1: a training step

STEP_HINT_TORCH = (
    "One step is: optimizer.zero_grad(); loss = loss_fn(model(X), y); loss.backward(); "
    "optimizer.step(); return loss.item()."
)


def _torch_mlp(weights):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return load_torch(model, weights)


def _torch_run(step, weights, batches):
    """Run ``step(model, optimizer, loss_fn, X, y)`` over batches; return (losses, parameters)."""
    import torch

    model = _torch_mlp(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = [
        step(model, optimizer, loss_fn, torch.from_numpy(X), torch.from_numpy(y))
        for X, y in batches
    ]
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


def _torch_reference(zero_grad=True):
    def step(model, optimizer, loss_fn, X, y):
        if zero_grad:
            optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _same(params_a, params_b):
    return all(
        np.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(params_a, params_b, strict=True)
    )


def _if_same_run(losses, params, want_losses, want_params, *, what, how, hint, loss_hint):
    """Return a pass message when a student's run matches the reference; raise on bad losses.

    Returns None when the parameters differ, so the caller can diagnose the usual mistakes.
    """
    for i, loss in enumerate(losses):
        if not isinstance(loss, float):
            raise Mismatch(
                f"step {i + 1} should return the loss as a Python float",
                f"float ({how})",
                type(loss).__name__,
                hint,
            )
    if not _same(params, want_params):
        return None
    expect_close("the losses your steps returned", losses, want_losses, rtol=1e-5, hint=loss_hint)
    return f"three steps give the same {what} and losses as the reference step."


def _max_difference(params, want_params):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(params, want_params, strict=True))


@exercise("05_training.pytorch.train_step", "Fix a PyTorch training step", hint=STEP_HINT_TORCH)
def train_step_torch(train_step):
    weights = init_weights(MLP_SPEC, seed=1)
    batches = _batches()
    losses, params = _torch_run(train_step, weights, batches)
    want_losses, want_params = _torch_run(_torch_reference(), weights, batches)
    passed = _if_same_run(
        losses,
        params,
        want_losses,
        want_params,
        what="parameters",
        how="loss.item()",
        hint=STEP_HINT_TORCH,
        loss_hint="Return the loss computed *before* optimizer.step().",
    )
    if passed:
        return passed
    initial = [p.detach().numpy() for p in _torch_mlp(weights).parameters()]
    if _same(params, initial):
        raise Mismatch(
            "after three steps the parameters have not changed",
            "updated parameters",
            "the initial parameters",
            "Did you call optimizer.step() (after loss.backward())?",
        )
    _, accumulated = _torch_run(_torch_reference(zero_grad=False), weights, batches)
    if _same(params, accumulated):
        raise Mismatch(
            "the parameters after three steps match a loop whose gradients accumulate",
            "each step uses only its own batch's gradient",
            "step 3 used the sum of the gradients of steps 1, 2 and 3",
            "loss.backward() adds into p.grad: call optimizer.zero_grad() at the start of every step.",
        )
    raise Mismatch(
        "the parameters after three steps differ from the reference step",
        "max |difference| < 1e-5",
        f"max |difference| = {_max_difference(params, want_params):.3g}",
        STEP_HINT_TORCH,
    )


STEP_HINT_TF = (
    "Run the forward pass and the loss inside `with tf.GradientTape() as tape:`, then "
    "grads = tape.gradient(loss, model.trainable_variables) and "
    "optimizer.apply_gradients(zip(grads, model.trainable_variables)); return float(loss)."
)


def _keras_mlp(weights):
    import keras

    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    return load_keras(model, weights)


def _keras_run(step, weights, batches):
    import keras

    model = _keras_mlp(weights)
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = [step(model, optimizer, loss_fn, X, y) for X, y in batches]
    return losses, [np.array(w) for w in model.get_weights()]


def _keras_reference(model, optimizer, loss_fn, X, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(X, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return float(loss)


@exercise(
    "05_training.tensorflow.train_step", "Fix a GradientTape training step", hint=STEP_HINT_TF
)
def train_step_tf(train_step):
    import tensorflow as tf

    weights = init_weights(MLP_SPEC, seed=1)
    batches = _batches()
    with tf.device("/CPU:0"):
        try:
            losses, params = _keras_run(train_step, weights, batches)
        except ValueError as err:
            if "gradient" not in str(err).lower():
                raise
            raise Mismatch(
                "applying the gradients failed: the tape returned no gradients",
                "one gradient tensor per trainable variable",
                f"ValueError: {str(err)[:120]}",
                "The tape only sees what runs inside its `with` block: call the model and the "
                "loss there, and ask for gradients with respect to model.trainable_variables.",
            ) from None
        want_losses, want_params = _keras_run(_keras_reference, weights, batches)
    passed = _if_same_run(
        losses,
        params,
        want_losses,
        want_params,
        what="variables",
        how="float(loss)",
        hint=STEP_HINT_TF,
        loss_hint="Return the loss computed inside the tape, before the update.",
    )
    if passed:
        return passed
    if _same(params, [np.array(w) for w in _keras_mlp(weights).get_weights()]):
        raise Mismatch(
            "after three steps the variables have not changed",
            "updated variables",
            "the initial variables",
            "Did you call optimizer.apply_gradients(zip(grads, model.trainable_variables))?",
        )
    raise Mismatch(
        "the variables after three steps differ from the reference step",
        "max |difference| < 1e-5",
        f"max |difference| = {_max_difference(params, want_params):.3g}",
        STEP_HINT_TF,
    )


# ---------------------------------------------------------------- Exercise 2: dense layouts

LAYOUT_HINT_TORCH = (
    "A Keras Dense kernel is (in, out) and computes x @ kernel; a PyTorch Linear weight is "
    "(out, in) and computes x @ weight.T. Transpose (kernel.T), don't reshape."
)
LAYOUT_HINT_TF = (
    "A PyTorch Linear weight is (out, in) and computes x @ weight.T; a Keras Dense kernel is "
    "(in, out) and computes x @ kernel. Transpose (weight.T), don't reshape."
)


def _layout_cases():
    rng = np.random.default_rng(5)
    for n_in, n_out in ((5, 3), (4, 4), (6, 2)):
        kernel = rng.standard_normal((n_in, n_out)).astype(np.float32)  # (in, out)
        bias = rng.standard_normal(n_out).astype(np.float32)
        x = rng.standard_normal((7, n_in)).astype(np.float32)
        yield kernel, bias, x, x @ kernel + bias


@exercise(
    "05_training.pytorch.linear_weight",
    "Load a Keras Dense kernel into a PyTorch Linear",
    hint=LAYOUT_HINT_TORCH,
)
def linear_weight_torch(linear_weight_from_kernel):
    import torch

    for kernel, bias, x, expected in _layout_cases():
        n_in, n_out = kernel.shape
        weight = np.asarray(linear_weight_from_kernel(kernel.copy()), dtype=np.float32)
        expect_equal(
            f"shape of the Linear weight for a ({n_in}, {n_out}) kernel",
            weight.shape,
            (n_out, n_in),
            hint=LAYOUT_HINT_TORCH,
        )
        layer = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
            got = layer(torch.from_numpy(x)).numpy()
        expect_close(
            f"Linear({n_in}, {n_out}) outputs with your weight vs x @ kernel + bias",
            got,
            expected,
            rtol=1e-5,
            atol=1e-5,
            hint=LAYOUT_HINT_TORCH,
        )
    return "the Linear layer computes what the Dense layer computed, for three layer sizes."


@exercise(
    "05_training.tensorflow.dense_kernel",
    "Load a PyTorch Linear weight into a Keras Dense",
    hint=LAYOUT_HINT_TF,
)
def dense_kernel_tf(dense_kernel_from_linear):
    import keras

    for kernel, bias, x, expected in _layout_cases():
        n_in, n_out = kernel.shape
        weight = np.ascontiguousarray(kernel.T)  # what PyTorch stores: (out, in)
        got_kernel = np.asarray(dense_kernel_from_linear(weight.copy()), dtype=np.float32)
        expect_equal(
            f"shape of the Dense kernel for a ({n_out}, {n_in}) Linear weight",
            got_kernel.shape,
            (n_in, n_out),
            hint=LAYOUT_HINT_TF,
        )
        layer = keras.layers.Dense(n_out)
        layer.build((None, n_in))
        layer.set_weights([got_kernel, bias])
        expect_close(
            f"Dense({n_out}) outputs with your kernel vs x @ weight.T + bias",
            np.asarray(layer(x)),
            expected,
            rtol=1e-5,
            atol=1e-5,
            hint=LAYOUT_HINT_TF,
        )
    return "the Dense layer computes what the Linear layer computed, for three layer sizes."


# ---------------------------------------------------------------- Exercise 3: accuracy

ACCURACY_HINT = (
    "Predicted class = the index of the largest logit in each row (argmax over axis 1); "
    "accuracy = the number of correct predictions divided by the number of examples, as a float."
)


def _accuracy_cases():
    """(kernel (4, 3), bias, X (n, 4), y, expected accuracy): a fixed linear 'model'."""
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((4, 3)).astype(np.float32)
    bias = np.zeros(3, np.float32)
    for n in (12, 30):
        X = rng.standard_normal((n, 4)).astype(np.float32)
        predicted = np.argmax(X @ kernel, axis=1)
        y = predicted.copy()
        y[: n // 3] = (y[: n // 3] + 1) % 3  # a third of the labels are wrong
        yield kernel, bias, X, y.astype(np.int64), float(np.mean(predicted == y))


def _check_accuracy(accuracy, make_model, to_inputs):
    for kernel, bias, X, y, expected in _accuracy_cases():
        got = accuracy(make_model(kernel, bias), *to_inputs(X, y))
        if hasattr(got, "item"):
            got = got.item()
        if not isinstance(got, float):
            raise Mismatch(
                "accuracy() should return a Python float",
                "a float such as 0.75",
                f"{type(got).__name__} {got!r}",
                ACCURACY_HINT,
            )
        if got > 1 and abs(got - expected * len(y)) < 1e-6:
            raise Mismatch(
                f"accuracy on {len(y)} examples",
                f"{expected:.4f}",
                f"{got} (a count)",
                "Divide the number of correct predictions by the number of examples.",
            )
        expect_close(f"accuracy on {len(y)} examples", got, expected, rtol=1e-6, hint=ACCURACY_HINT)
    return "right on two sets of examples."


@exercise("05_training.pytorch.accuracy", "Measure a PyTorch model's accuracy", hint=ACCURACY_HINT)
def accuracy_torch(accuracy):
    import torch

    def make_model(kernel, bias):
        layer = torch.nn.Linear(4, 3)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(bias))
        return layer

    return _check_accuracy(
        accuracy, make_model, lambda X, y: (torch.from_numpy(X), torch.from_numpy(y))
    )


@exercise("05_training.tensorflow.accuracy", "Measure a Keras model's accuracy", hint=ACCURACY_HINT)
def accuracy_tf(accuracy):
    import keras
    import tensorflow as tf

    def make_model(kernel, bias):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.layers[0].set_weights([kernel, bias])
        return model

    with tf.device("/CPU:0"):
        return _check_accuracy(accuracy, make_model, lambda X, y: (tf.constant(X), tf.constant(y)))

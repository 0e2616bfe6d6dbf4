"""The shared model and the training pairs (one process / distributed) of both tracks, and
how many lines distribution changes."""

import difflib
import inspect
import io
import itertools
import sys
import textwrap

# ---------------------------------------------------------------- the shared model


def torch_mlp(weights):
    """Return the course's MLP (``Linear``, ReLU, ``Linear``) in PyTorch, loaded with ``weights``
    (a list of :class:`course_utils.training.Layer` in the Keras layout)."""
    import torch

    from ..training import load_torch

    (n_in, hidden), n_out = weights[0].kernel.shape, weights[1].kernel.shape[1]
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out)
    )
    return load_torch(model, weights)


def keras_mlp(weights):
    """Return the course's MLP (``Dense`` with ReLU, ``Dense``) in Keras, loaded with ``weights``.
    Build it inside ``strategy.scope()`` to make its variables distributed."""
    import keras

    from ..training import load_keras

    (n_in, hidden), n_out = weights[0].kernel.shape, weights[1].kernel.shape[1]
    model = keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(n_out),
        ]
    )
    return load_keras(model, weights)


def mlp_weights(hidden=64, seed=0, n_in=64, n_out=10):
    """Return the shared NumPy initial weights of an ``n_in``-``hidden``-``n_out`` MLP
    (:func:`course_utils.training.init_weights`: Glorot uniform, zero biases, float32)."""
    from ..training import init_weights

    return init_weights([("dense", n_in, hidden), ("dense", hidden, n_out)], seed=seed)


def _torch_weights(model, like):
    from ..training import torch_weights

    return torch_weights(model, like)


def _keras_weights(model, like):
    from ..training import keras_weights

    return keras_weights(model, like)


# ---------------------------------------------------------------- PyTorch: the training pair


def torch_train(X, y, weights, steps, batch_size, lr):
    """Train the MLP for ``steps`` SGD steps of ``batch_size`` examples, in one process.

    Returns ``(losses, weights)``: the loss of every step and the final weights (Keras layout).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = torch_mlp(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = DataLoader(dataset, batch_size=batch_size)
    losses = []
    for _, (Xb, yb) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss = loss_fn(model(Xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, _torch_weights(model, weights)


def torch_train_ddp(rank, world_size, X, y, weights, steps, batch_size, lr):
    """The same training as :func:`torch_train`, as worker ``rank`` of ``world_size``:
    ``batch_size`` examples per worker and step, gradients averaged by DDP.

    Returns ``(losses, weights)``: this worker's loss of every step, and the final weights.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    model = DDP(torch_mlp(weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    losses = []
    for _, (Xb, yb) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss = loss_fn(model(Xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, _torch_weights(model.module, weights)


def tf_train(X, y, weights, steps, batch_size, lr):
    """Train the MLP for ``steps`` SGD steps of ``batch_size`` examples, in one process.

    Returns ``(losses, weights)``: the loss of every step and the final weights.
    """
    import keras
    import tensorflow as tf

    model = keras_mlp(weights)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(batch_size)

    @tf.function
    def train_step(Xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(Xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    losses = [float(train_step(Xb, yb)) for Xb, yb in itertools.islice(dataset, steps)]
    return losses, _keras_weights(model, weights)


def tf_train_distributed(strategy, X, y, weights, steps, batch_size, lr):
    """The same training as :func:`tf_train`, under ``strategy``: ``batch_size`` examples per
    replica and step; the optimizer sums the replicas' gradients of a loss scaled by the
    global batch, which averages them.

    Returns ``(losses, weights)``: the global loss of every step, and the final weights.
    """
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = keras_mlp(weights)
        optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    global_batch = batch_size * strategy.num_replicas_in_sync

    def dataset_fn(ctx):
        dataset = tf.data.Dataset.from_tensor_slices((X, y))
        return dataset.shard(ctx.num_input_pipelines, ctx.input_pipeline_id).batch(batch_size)

    dataset = strategy.distribute_datasets_from_function(dataset_fn)

    @tf.function
    def train_step(Xb, yb):
        def replica_step(Xb, yb):
            with tf.GradientTape() as tape:
                per_example = loss_fn(yb, model(Xb, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        per_replica = strategy.run(replica_step, args=(Xb, yb))
        return strategy.reduce("SUM", per_replica, axis=None)

    losses = [float(train_step(Xb, yb)) for Xb, yb in itertools.islice(dataset, steps)]
    return losses, _keras_weights(model, weights)


# The pair above is shown to students as a diff, whole; the traps and fault drills share
# its distributed step through these two helpers.


def tf_sharded_batches(strategy, X, y, batch_size):
    """Each worker's shard of ``(X, y)`` in batches of ``batch_size``, distributed by
    ``strategy`` (every worker reads only its own shard)."""
    import tensorflow as tf

    def dataset_fn(ctx):
        dataset = tf.data.Dataset.from_tensor_slices((X, y))
        return dataset.shard(ctx.num_input_pipelines, ctx.input_pipeline_id).batch(batch_size)

    return strategy.distribute_datasets_from_function(dataset_fn)


def tf_replica_step(strategy, model, optimizer, batch_size):
    """Return ``replica_step(Xb, yb) -> loss``, one replica's part of a data-parallel SGD step:
    the loss of its ``batch_size`` examples scaled by the global batch, so that the optimizer's
    sum of the replicas' gradients is their average."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    global_batch = batch_size * strategy.num_replicas_in_sync

    def replica_step(Xb, yb):
        with tf.GradientTape() as tape:
            per_example = loss_fn(yb, model(Xb, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return replica_step


def keras_fit_distributed(strategy, X, y, weights, steps, batch_size, lr):
    """Train the MLP with Keras ``fit`` under ``strategy``, ``batch_size`` examples per replica
    and step: Keras splits each global batch between the replicas itself. Returns
    ``(losses, weights)`` (``fit`` reports the running mean of the loss over the epoch)."""
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = keras_mlp(weights)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    global_batch = batch_size * strategy.num_replicas_in_sync
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(global_batch).take(steps)
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"], _keras_weights(model, weights)


def logical_cpus(n=2):
    """Split this process's CPU into ``n`` logical TensorFlow devices; return the CPU device
    names. Call it before TensorFlow runs anything: once its runtime has started, the device
    list is fixed, and the devices already there are returned."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:  # the runtime is initialised already: keep what is there
        pass
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def code_lines(fn):
    """Return the lines of a function's source without its docstring, comments and blank lines."""
    import ast

    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    body = tree.body[0].body
    skip = set()
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
    ):
        if isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = []
    for number, line in enumerate(source.splitlines(), 1):
        code = _strip_comment(line).rstrip()
        if number in skip or not code.strip():
            continue
        lines.append(code)
    return lines


def _strip_comment(line):
    """Drop a trailing ``# comment`` that is not inside a string."""
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line
    for token in tokens:
        if token.type == tokenize.COMMENT:
            return line[: token.start[1]]
    return line


def changed_lines(before, after):
    """Count the lines of code that change from function ``before`` to function ``after``.

    Both are compared without docstrings, comments and blank lines (:func:`code_lines`), with
    ``difflib``; a line whose only change is its indentation (code moved into a block) counts
    as unchanged. Returns ``{"before": n, "after": n, "added": n, "removed": n, "changed": n,
    "listing": [...]}``: ``changed`` counts every line touched (an edited line once, an added
    or removed line once), and ``listing`` is ``after`` with ``+`` before its new lines and
    the lines of ``before`` it lost marked ``-``.
    """
    a, b = code_lines(before), code_lines(after)
    matcher = difflib.SequenceMatcher(
        a=[line.strip() for line in a], b=[line.strip() for line in b], autojunk=False
    )
    added = removed = changed = 0
    listing = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            listing += [f"  {line}" for line in b[j1:j2]]
            continue
        removed += i2 - i1
        added += j2 - j1
        changed += max(i2 - i1, j2 - j1)
        listing += [f"- {line}" for line in a[i1:i2]] + [f"+ {line}" for line in b[j1:j2]]
    return {
        "before": len(a),
        "after": len(b),
        "added": added,
        "removed": removed,
        "changed": changed,
        "listing": listing,
    }


TRAINING_PAIRS = {
    "pytorch": ("torch_train", "torch_train_ddp"),
    "tensorflow": ("tf_train", "tf_train_distributed"),
}


def distribution_cost(track):
    """Return :func:`changed_lines` for one track's training pair (``"pytorch"`` or
    ``"tensorflow"``): the single-process function and its distributed version."""
    single, distributed = TRAINING_PAIRS[track]
    module = sys.modules[__name__]
    return changed_lines(getattr(module, single), getattr(module, distributed))


def script_lines(text):
    """Return the lines of a script without its module docstring, comments and blank lines."""
    import ast

    tree = ast.parse(text)
    skip = set()
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        skip.update(range(first.lineno, first.end_lineno + 1))
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        code = _strip_comment(line).rstrip()
        if number not in skip and code.strip():
            lines.append(code)
    return lines


def torch_accuracy(X, y, weights):
    """The MLP's accuracy on ``(X, y)`` in this process, every example once."""
    return float((torch_mlp_predict(X, weights) == y).mean())


def torch_mlp_predict(X, weights):
    """The MLP's predicted classes for ``X``, in this process."""
    import torch

    with torch.no_grad():
        return torch_mlp(weights)(torch.from_numpy(X)).argmax(1).numpy()

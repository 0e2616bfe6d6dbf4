"""Checkers for 07_distributed: shard a data set, average gradients across workers, set up a
model for data-parallel training.

Every check has a time limit. The PyTorch gradient and setup checks run the student's function
(sent as source code) in two real worker processes (:class:`course_utils.distributed.
TorchWorkers`), which are always stopped: a wrong answer that leaves one worker waiting in a
collective ends in a timeout with an explanation, never in a hung notebook. The TensorFlow
checks run in this process under a ``MirroredStrategy`` over the notebook's logical CPUs.
"""

import ast
import contextlib
import inspect
import textwrap
import threading

import numpy as np

from ..checks import Mismatch, NotSolved, exercise

CALL_TIMEOUT = 60  # s for a function run in this process
WORKER_TIMEOUT = 90  # s for a check that runs in worker processes
GROUP_TIMEOUT = 15  # s a worker waits in a collective before it fails
CASES = ((10, 2), (10, 3), (7, 4), (12, 4), (3, 4))  # (data set size, number of workers)


def _is_stub(fn):
    """True when a function's body only raises NotImplementedError (the exercise's stub)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0].body if tree.body and hasattr(tree.body[0], "body") else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _call(fn, *args, timeout=CALL_TIMEOUT, what="your function"):
    """Call ``fn(*args)`` in a thread and return its result; a call that takes longer than
    ``timeout`` seconds is reported as wrong (it keeps running in the background)."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args)
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Mismatch(
            f"{what} did not return within {timeout} s",
            "a result",
            "no result (still running)",
            "Look for an endless loop, e.g. a repeated data set that never ends. "
            "If the kernel stays busy, restart it.",
        )
    if "error" in box:
        raise box["error"]
    return box["result"]


# ---------------------------------------------------------------- Exercise 1: sharding

SHARD_HINT = (
    "Every worker must get the same number of examples (or the ones with more would wait "
    "forever in the gradient all-reduce of their last step), together they must cover the "
    "data, and they must not overlap. Either pad the data to a multiple of world_size by "
    "repeating its first examples (what DistributedSampler does), or drop the last "
    "n % world_size examples; then take every world_size-th example starting at rank."
)


def _judge_shards(shards, n, world_size):
    """Check a list of per-rank shards (lists of example indices) of a data set of size ``n``.

    Returns "even" (no remainder), "padded" or "dropped" (how the remainder was handled), or
    raises Mismatch.
    """
    where = f"{n} examples on {world_size} workers"
    for rank, shard in enumerate(shards):
        bad = [i for i in shard if not (isinstance(i, int | np.integer) and 0 <= i < n)]
        if bad:
            raise Mismatch(
                f"{where}: rank {rank} got values that are not example indices",
                f"integers from 0 to {n - 1}",
                repr(bad[:5]),
                SHARD_HINT,
            )
    sizes = [len(s) for s in shards]
    if len(set(sizes)) != 1:
        raise Mismatch(
            f"{where}: the workers got different numbers of examples",
            "the same number on every rank",
            ", ".join(f"rank {r}: {k}" for r, k in enumerate(sizes)),
            SHARD_HINT,
        )
    every = [int(i) for s in shards for i in s]
    counts = np.bincount(every, minlength=n) if every else np.zeros(n, int)
    missing = [i for i in range(n) if counts[i] == 0]
    padded_total = -(-n // world_size) * world_size
    if not missing and len(every) == padded_total:
        return "even" if n % world_size == 0 else "padded"
    if not missing and len(every) > padded_total:
        twice = [i for i in range(n) if counts[i] > 1]
        raise Mismatch(
            f"{where}: the shards overlap",
            f"{padded_total} indices in all (n padded to a multiple of {world_size})",
            f"{len(every)} indices, e.g. index {twice[0]} {int(counts[twice[0]])} times",
            SHARD_HINT,
        )
    if (
        len(missing) <= world_size - 1
        and counts.max(initial=0) <= 1
        and len(every) == n - n % world_size
    ):
        return "dropped"
    raise Mismatch(
        f"{where}: some examples reach no worker",
        "every example on some rank (or only the last n % world_size dropped)",
        f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}",
        SHARD_HINT,
    )


REMAINDER = {
    "padded": "padded by repeating the first examples",
    "dropped": "the last n % world_size examples dropped",
}


def _shard_message(kinds, same_as):
    uneven = sorted({kind for kind in kinds.values() if kind != "even"})
    return (
        f"equal, non-overlapping shares for every worker, in {len(kinds)} cases"
        + (f" (uneven sizes: {' / '.join(REMAINDER[k] for k in uneven)})" if uneven else "")
        + (f"; the same as {same_as}" if same_as else "")
        + "."
    )


@exercise(
    "07_distributed.pytorch.shard_indices",
    "Shard a data set across workers (PyTorch)",
    hint=SHARD_HINT,
)
def shard_indices_torch(shard_indices):
    from torch.utils.data.distributed import DistributedSampler

    kinds, same = {}, True
    for n, world_size in CASES:
        shards = []
        for rank in range(world_size):
            got = _call(shard_indices, n, rank, world_size, what="shard_indices")
            try:
                shards.append([int(i) for i in got])
            except TypeError:
                raise Mismatch(
                    f"shard_indices({n}, {rank}, {world_size}) should return a list of indices",
                    "a list of ints",
                    type(got).__name__,
                    SHARD_HINT,
                ) from None
        kinds[(n, world_size)] = _judge_shards(shards, n, world_size)
        reference = [
            list(DistributedSampler(range(n), world_size, r, shuffle=False))
            for r in range(world_size)
        ]
        same = same and shards == reference
    return _shard_message(kinds, "DistributedSampler(shuffle=False)" if same else None)


@exercise(
    "07_distributed.tensorflow.shard",
    "Shard a data set across workers (TensorFlow)",
    hint=SHARD_HINT.replace("DistributedSampler does", "DistributedSampler does in PyTorch")
    + " In tf.data: dataset.take(...) then dataset.shard(num_shards=world_size, index=rank).",
)
def shard_tf(shard):
    import tensorflow as tf

    kinds = {}
    for n, world_size in CASES:
        shards = []
        for rank in range(world_size):
            dataset = tf.data.Dataset.range(n)
            got = _call(shard, dataset, rank, world_size, what="shard")
            if not isinstance(got, tf.data.Dataset):
                raise Mismatch(
                    f"shard(dataset, {rank}, {world_size}) should return a tf.data.Dataset",
                    "a tf.data.Dataset",
                    type(got).__name__,
                    "Call methods of the data set (they return a new data set).",
                )
            limit = 2 * n + world_size + 1  # an endless data set stops here
            values = _call(
                lambda d=got, k=limit: [int(v) for v in d.take(k).as_numpy_iterator()],
                what="iterating over your data set",
            )
            if len(values) >= limit:
                raise Mismatch(
                    f"{n} examples on {world_size} workers: rank {rank}'s data set does not end",
                    f"at most {-(-n // world_size)} examples",
                    f"more than {limit - 1}",
                    "Don't .repeat() the data set here.",
                )
            shards.append(values)
        kinds[(n, world_size)] = _judge_shards(shards, n, world_size)
    return _shard_message(kinds, None)


# ---------------------------------------------------------------- PyTorch workers for checks

CHECK_STEPS, CHECK_BATCH, CHECK_LR = 3, 8, 0.5


def _check_data(world_size):
    """Digits for the checks: per step, ``world_size`` batches of CHECK_BATCH examples."""
    from ..data import load_digits

    splits = load_digits(seed=0)
    n = CHECK_STEPS * CHECK_BATCH * world_size
    return splits.X_train[:n], splits.y_train[:n]


def _run_answer_in_workers(checker_fn, answer, **kwargs):
    """Run ``checker_fn(rank, world_size, answer=Source, ...)`` in two PyTorch workers; return
    the per-rank results. Worker trouble becomes Mismatch, NotImplementedError stays itself."""
    from ..distributed import Source, TorchWorkers, WorkerError, WorkerTimeout

    if _is_stub(answer):
        raise NotSolved
    source = Source.of(answer)
    try:
        with TorchWorkers(
            2, timeout=GROUP_TIMEOUT, run_timeout=WORKER_TIMEOUT, fault_grace=GROUP_TIMEOUT + 5
        ) as workers:
            return workers.run(checker_fn, answer=source, **kwargs)
    except WorkerTimeout as err:
        raise Mismatch(
            "the two workers did not finish",
            "both workers finish in a few seconds",
            str(err),
            "Every worker must call the same collectives, in the same order, with tensors of "
            "the same shape; if one calls all_reduce and the other doesn't, both wait.",
        ) from None
    except WorkerError as err:
        if any("NotImplementedError" in text for text in err.outcomes.values()):
            raise NotSolved from None
        if any(
            "timed out" in text.lower() or "timeout" in text.lower()
            for text in err.outcomes.values()
        ):
            raise Mismatch(
                "a collective timed out in the workers",
                "every worker calls the same collectives",
                str(err),
                "Every worker must call the same collectives, in the same order, with tensors "
                "of the same shape; if one calls all_reduce and the other doesn't, both wait.",
            ) from None
        raise Mismatch(
            "your function failed in the worker processes",
            "no error",
            str(err),
            "It runs in fresh worker processes, with torch, dist (torch.distributed), nn, np, "
            "DDP and cu (course_utils) available: import anything else inside the function.",
        ) from None


def _worker_namespace():
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    import course_utils

    return {
        "torch": torch,
        "dist": dist,
        "nn": torch.nn,
        "np": np,
        "DDP": DistributedDataParallel,
        "cu": course_utils,
    }


def _load(answer):
    from ..distributed import _resolve

    return _resolve(("source", answer.name, answer.code), _worker_namespace())


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def average_gradients_worker(rank, world_size, answer, X, y, weights):
    """In a worker: train CHECK_STEPS steps on this rank's batches, calling the student's
    ``average_gradients`` after every backward pass. Returns ``{"mine": the parameters,
    "local": the parameters of the same run without any averaging}`` (lists of arrays)."""
    import torch

    from ..distributed import torch_mlp

    average_gradients = _load(answer)
    mine_X, mine_y = X[rank::world_size], y[rank::world_size]

    def train(after_backward):
        model = torch_mlp(weights)
        optimizer = torch.optim.SGD(model.parameters(), lr=CHECK_LR)
        for step in range(CHECK_STEPS):
            batch = slice(step * CHECK_BATCH, (step + 1) * CHECK_BATCH)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(torch.from_numpy(mine_X[batch])), torch.from_numpy(mine_y[batch])
            )
            loss.backward()
            after_backward(model)
            optimizer.step()
        return _params(model)

    return {
        "mine": train(lambda m: average_gradients(m, world_size)),
        "local": train(lambda m: None),
    }


def _one_process_params(X, y, weights, world_size=2):
    """Parameters (PyTorch layout) of one process trained on both workers' batches together,
    which is what DDP gives (07's lesson tests it): worker r's batch s is
    ``X[r::world_size][s * b:(s + 1) * b]``."""
    from ..distributed import torch_train

    positions = np.arange(len(y))
    order = np.concatenate(
        [
            positions[r::world_size][s * CHECK_BATCH : (s + 1) * CHECK_BATCH]
            for s in range(CHECK_STEPS)
            for r in range(world_size)
        ]
    )
    _, trained = torch_train(
        X[order], y[order], weights, CHECK_STEPS, world_size * CHECK_BATCH, CHECK_LR
    )
    return [a for layer in trained for a in (layer.kernel.T, layer.bias)]


def _close(a, b, tol=1e-5):
    return all(np.allclose(x, z, rtol=tol, atol=tol) for x, z in zip(a, b, strict=True))


def _max_abs(a, b):
    return max(float(np.max(np.abs(x - z))) for x, z in zip(a, b, strict=True))


AVERAGE_HINT_TORCH = (
    "After loss.backward(), for every parameter p: dist.all_reduce(p.grad) (a sum over the "
    "workers, in place), then p.grad /= world_size. gloo has no ReduceOp.AVG."
)


@exercise(
    "07_distributed.pytorch.average_gradients",
    "Average gradients by hand with all_reduce",
    hint=AVERAGE_HINT_TORCH,
)
def average_gradients_torch(average_gradients):
    from ..training import MLP_SPEC, init_weights

    X, y = _check_data(2)
    weights = init_weights(MLP_SPEC, seed=3)
    results = _run_answer_in_workers(
        average_gradients_worker, average_gradients, X=X, y=y, weights=weights
    )
    mine, local = [r["mine"] for r in results], [r["local"] for r in results]
    if not _close(mine[0], mine[1], tol=1e-6):
        same_as_local = all(_close(m, lo) for m, lo in zip(mine, local, strict=True))
        raise Mismatch(
            f"after {CHECK_STEPS} steps the two workers hold different parameters",
            "the same parameters on both workers",
            "each worker's own (not averaged) update"
            if same_as_local
            else "different parameters on the two workers",
            AVERAGE_HINT_TORCH,
        )
    want = _one_process_params(X, y, weights)
    if _close(mine[0], want):
        return (
            f"{CHECK_STEPS} steps on two workers give DDP's parameters, those of one process "
            "trained on both workers' batches (to 1e-5)."
        )
    raise Mismatch(
        f"after {CHECK_STEPS} steps the parameters differ from DDP's",
        "DDP's parameters (max |difference| < 1e-5)",
        f"max |difference| = {_max_abs(mine[0], want):.3g}",
        "The all-reduce sums the gradients: divide by world_size to average them, as DDP does."
        if not _close(mine[0], local[0])
        else AVERAGE_HINT_TORCH,
    )


def setup_worker(rank, world_size, answer, X, y, weights):
    """In a worker: build (model, optimizer) with the student's setup, train CHECK_STEPS steps
    on this rank's examples, and return the parameters."""
    import torch

    setup = _load(answer)
    model, optimizer = setup(weights, CHECK_LR)
    mine_X, mine_y = X[rank::world_size], y[rank::world_size]
    for step in range(CHECK_STEPS):
        batch = slice(step * CHECK_BATCH, (step + 1) * CHECK_BATCH)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(torch.from_numpy(mine_X[batch])), torch.from_numpy(mine_y[batch])
        )
        loss.backward()
        optimizer.step()
    module = getattr(model, "module", model)
    return {"params": _params(module), "wrapped": type(model).__name__}


SETUP_HINT_TORCH = (
    "Build the MLP from the shared weights (cu.distributed.torch_mlp(weights)), wrap it: "
    "model = DDP(model), and create the optimizer from model.parameters()."
)


@exercise(
    "07_distributed.pytorch.setup",
    "Set up a model for data-parallel training (PyTorch)",
    hint=SETUP_HINT_TORCH,
)
def setup_torch(setup):
    from ..training import MLP_SPEC, init_weights

    X, y = _check_data(2)
    weights = init_weights(MLP_SPEC, seed=4)
    results = _run_answer_in_workers(setup_worker, setup, X=X, y=y, weights=weights)
    params = [r["params"] for r in results]
    initial = [a for layer in weights for a in (layer.kernel.T, layer.bias)]
    if _close(params[0], initial):
        raise Mismatch(
            f"after {CHECK_STEPS} steps the parameters have not changed",
            "updated parameters",
            "the initial parameters",
            "Create the optimizer from the parameters of the model you return.",
        )
    if not _close(params[0], params[1], tol=1e-6):
        raise Mismatch(
            f"after {CHECK_STEPS} steps the two workers hold different parameters",
            "the same parameters on both workers",
            f"a {results[0]['wrapped']} whose gradients nobody averages",
            SETUP_HINT_TORCH,
        )
    want = _one_process_params(X, y, weights)
    if not _close(params[0], want):
        raise Mismatch(
            "the parameters differ from one process training on both workers' batches",
            "max |difference| < 1e-5",
            f"max |difference| = {_max_abs(params[0], want):.3g}",
            SETUP_HINT_TORCH,
        )
    return (
        f"both workers end with the parameters of one process trained on batches of "
        f"{2 * CHECK_BATCH}, after {CHECK_STEPS} steps."
    )


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
    from ..distributed import tf_train

    return tf_train(X, y, weights, CHECK_STEPS, global_batch, CHECK_LR)[1]


def _tf_close(got, want, tol=1e-5):
    return all(
        np.allclose(g.kernel, w.kernel, rtol=tol, atol=tol)
        and np.allclose(g.bias, w.bias, rtol=tol, atol=tol)
        for g, w in zip(got, want, strict=True)
    )


def _tf_max_difference(got, want):
    from ..training import max_difference

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

    from ..distributed import keras_mlp
    from ..training import MLP_SPEC, init_weights

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
        from ..distributed import _keras_weights

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

    from ..distributed import _keras_weights
    from ..training import MLP_SPEC, init_weights

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

"""The scaling benchmark: step times of one worker, two unsynchronised workers and two
synchronised ones, and the time to the first distributed step; plus FSDP2's shards."""

import time

import numpy as np

from .collectives import _local, _rank
from .models import (
    keras_mlp,
    mlp_weights,
    tf_train_distributed,
    torch_mlp,
    torch_train_ddp,
)
from .tf_pool import _tf_barrier


def torch_scaling(rank, world_size, mode, hidden, batch_size, steps, warmup=3, seed=0):
    """Time training steps of a ``64-hidden-10`` MLP on ``batch_size`` random examples per worker.

    ``mode``: ``"one worker"`` (rank 0 trains alone, the others idle), ``"no sync"`` (every
    rank trains its own model at the same time, without communicating) or ``"ddp"`` (every
    rank trains one DDP model). Returns this rank's step times in seconds (None when idle).
    """
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    if mode == "one worker" and rank != 0:
        return None
    if mode not in ("one worker", "no sync", "ddp"):
        raise ValueError(f"unknown mode {mode!r}")
    generator = torch.Generator().manual_seed(seed + rank)
    X = torch.rand(batch_size, 64, generator=generator)
    y = torch.randint(0, 10, (batch_size,), generator=generator)
    model = torch_mlp(mlp_weights(hidden, seed))
    if mode == "ddp":
        model = DDP(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    if mode != "one worker":
        dist.barrier()
    spans = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
        if i >= warmup:
            spans.append(time.perf_counter() - start)
    return spans


def torch_first_step(rank, world_size, X, y, weights, batch_size, lr):
    """Build the DDP model and run one training step; return the seconds it took."""
    start = time.perf_counter()
    torch_train_ddp(rank, world_size, X, y, weights, 1, batch_size, lr)
    return time.perf_counter() - start


def torch_fsdp_shards(rank, world_size, X, y, weights, steps, batch_size, lr):
    """Train the MLP with FSDP2 (``fully_shard``): each worker stores only its shard of every
    parameter. Returns ``{"shards": {name: (full shape, this worker's shape)}, "weights": the
    full weights after training (gathered)}``; the data and steps are as in
    :func:`torch_train_ddp`."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    from ..training import Layer, dense_from_linear

    mesh = init_device_mesh("cpu", (world_size,))
    model = torch_mlp(weights)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)  # each layer's parameters: split along dim 0
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    for _, (Xb, yb) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss_fn(model(Xb), yb).backward()
        optimizer.step()
    shards = {n: (tuple(p.shape), tuple(p.to_local().shape)) for n, p in model.named_parameters()}
    gathered = [p.full_tensor().detach().numpy() for p in model.parameters()]  # collective
    layers = [
        Layer(ref.kind, dense_from_linear(w), b, ref.flat_from)
        for ref, w, b in zip(weights, gathered[0::2], gathered[1::2], strict=True)
    ]
    return {"shards": shards, "weights": layers}


def tf_scaling(strategy, mode, hidden, batch_size, steps, warmup=3, seed=0):
    """Time training steps of a ``64-hidden-10`` MLP on ``batch_size`` random examples per worker.

    ``mode``: ``"one worker"`` (worker 0 trains alone, the others idle), ``"no sync"`` (every
    worker trains its own model at the same time, without communicating) or ``"distributed"``
    (one model under the strategy). Returns this worker's step times in seconds (None when idle).
    """
    import keras
    import tensorflow as tf

    rank = _rank(strategy)
    if mode == "one worker" and rank != 0:
        return None
    if mode not in ("one worker", "no sync", "distributed"):
        raise ValueError(f"unknown mode {mode!r}")
    rng = np.random.default_rng(seed + rank)
    X = rng.random((batch_size, 64), dtype=np.float32)
    y = rng.integers(0, 10, batch_size)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    weights = mlp_weights(hidden, seed)
    if mode == "distributed":
        with strategy.scope():
            model = keras_mlp(weights)
            optimizer = keras.optimizers.SGD(learning_rate=0.01)
        n = strategy.num_replicas_in_sync
    else:
        model, optimizer, n = keras_mlp(weights), keras.optimizers.SGD(learning_rate=0.01), 1

    def replica_step(X, y):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(
                loss_fn(y, model(X, training=True)), global_batch_size=batch_size * n
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    if mode == "distributed":
        step = tf.function(lambda X, y: strategy.run(replica_step, args=(X, y)))
        X, y = (
            strategy.experimental_distribute_values_from_function(lambda _, v=v: tf.constant(v))
            for v in (X, y)
        )
    else:
        step = tf.function(replica_step)
        X, y = tf.constant(X), tf.constant(y)
    if mode != "one worker":
        _tf_barrier(strategy)
    spans = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        _local(strategy, step(X, y)) if mode == "distributed" else step(X, y).numpy()
        if i >= warmup:
            spans.append(time.perf_counter() - start)
    return spans


def tf_first_step(strategy, X, y, weights, batch_size, lr):
    """Build the model under the strategy and run one training step; return the seconds."""
    start = time.perf_counter()
    tf_train_distributed(strategy, X, y, weights, 1, batch_size, lr)
    return time.perf_counter() - start

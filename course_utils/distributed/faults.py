"""Fault drills: training that resumes from a checkpoint, a worker that dies on cue, and what
each worker uses to notice a lost peer."""

import itertools
import os
import shutil

from .collectives import _rank
from .models import (
    _keras_weights,
    _torch_weights,
    keras_mlp,
    tf_replica_step,
    tf_sharded_batches,
    torch_mlp,
)


def torch_train_resumable(
    rank, world_size, X, y, weights, steps, batch_size, lr, path, every, crash_at=None
):
    """DDP training that survives a restart: it resumes from the checkpoint at ``path`` when
    one exists, and rank 0 writes one every ``every`` steps. ``crash_at=(rank, step)``
    makes that rank's process die just before that step (a simulated crash).

    Returns ``(first step run, weights)``.
    """
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    model = DDP(torch_mlp(weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    start = 0
    if os.path.exists(path):  # resume: every rank loads the same checkpoint
        state = torch.load(path, weights_only=True)
        model.module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    for step, (Xb, yb) in zip(range(steps), loader, strict=False):
        if step < start:
            continue  # done before the restart
        if crash_at == (rank, step):
            os._exit(3)  # the process dies: no exception, no clean-up
        optimizer.zero_grad()
        loss_fn(model(Xb), yb).backward()
        optimizer.step()
        if (step + 1) % every == 0 and rank == 0:
            state = {"model": model.module.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save({**state, "step": step + 1}, path + ".tmp")
            os.replace(path + ".tmp", path)  # atomic: a crash never leaves half a file
        if (step + 1) % every == 0:
            dist.barrier()  # nobody runs ahead of the last checkpoint
    return start, _torch_weights(model.module, weights)


def tf_train_resumable(strategy, X, y, weights, steps, batch_size, lr, path, every, crash_at=None):
    """Distributed training that survives a restart: it resumes from the latest checkpoint
    under ``path`` when there is one, and saves one every ``every`` steps (worker 0 into
    ``path``, the others into a scratch folder, as every worker must take part). ``crash_at=
    (rank, step)`` makes that worker's process die just before that step (a simulated crash).

    Returns ``(first step run, weights)``.
    """
    import keras
    import tensorflow as tf

    rank = _rank(strategy)
    with strategy.scope():
        model = keras_mlp(weights)
        optimizer = keras.optimizers.SGD(learning_rate=lr)
        step_var = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    scratch = f"{path}.worker{rank}"  # the other workers' copies, deleted at the end
    manager = tf.train.CheckpointManager(checkpoint, path if rank == 0 else scratch, 2)
    if tf.train.latest_checkpoint(path):
        checkpoint.restore(tf.train.latest_checkpoint(path))  # every worker restores the same
    start = int(step_var.numpy())
    replica_step = tf_replica_step(strategy, model, optimizer, batch_size)

    @tf.function
    def train_step(Xb, yb):
        strategy.run(replica_step, args=(Xb, yb))

    batches = tf_sharded_batches(strategy, X, y, batch_size)
    for step, (Xb, yb) in enumerate(itertools.islice(batches, steps)):
        if step < start:
            continue  # done before the restart
        if crash_at == (rank, step):
            os._exit(3)  # the process dies: no exception, no clean-up
        train_step(Xb, yb)
        step_var.assign(step + 1)
        if (step + 1) % every == 0:
            manager.save()  # every worker must save (it is collective); worker 0's copy is kept
    shutil.rmtree(scratch, ignore_errors=True)
    return start, _keras_weights(model, weights)


def exit_now(*args, code=3, **kwargs):
    """A worker function that ends its process at once with ``code`` (a crash, for faults)."""
    os._exit(code)


def tf_fault_settings(strategy):
    """What this worker's strategy uses to notice a lost peer: whether MWMS's own Python health
    check runs, and the coordination service's configured timeouts (0: TensorFlow's default)."""
    from tensorflow.python.eager import context

    config = context.context().coordination_service
    return {
        "python_health_check": bool(strategy.extended._enable_check_health),
        "coordination_service": config.service_type if config is not None else None,
        "cluster_register_timeout_in_ms": config.cluster_register_timeout_in_ms if config else None,
        "heartbeat_timeout_in_ms": config.heartbeat_timeout_in_ms if config else None,
    }

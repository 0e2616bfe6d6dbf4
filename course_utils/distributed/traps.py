"""The traps of data-parallel training, each as a worker function that shows the mistake and
its fix."""

import numpy as np

from .models import _torch_weights, keras_mlp, tf_replica_step, tf_sharded_batches, torch_mlp


def torch_evaluate(rank, world_size, X, y, weights, padded):
    """Evaluate the MLP on this rank's share of ``(X, y)``: ``padded=True`` takes the share
    ``DistributedSampler`` gives (padded so every rank has as many), ``False`` takes
    ``range(rank, n, world_size)`` (no example twice). Return this rank's own accuracy and the
    totals all-reduced over the ranks."""
    import torch
    import torch.distributed as dist
    from torch.utils.data.distributed import DistributedSampler

    n = len(X)
    if padded:
        indices = list(DistributedSampler(range(n), world_size, rank, shuffle=False))
    else:
        indices = list(range(rank, n, world_size))
    model = torch_mlp(weights)
    with torch.no_grad():
        logits = model(torch.from_numpy(X[indices]))
    correct = float((logits.argmax(1).numpy() == y[indices]).sum())
    sums = torch.tensor([correct, float(len(indices))], dtype=torch.float64)
    dist.all_reduce(sums)  # correct answers and examples, summed over the ranks
    return {
        "indices": indices,
        "own_accuracy": correct / len(indices),
        "correct": float(sums[0]),
        "count": int(sums[1]),
        "accuracy": float(sums[0] / sums[1]),
    }


def torch_accumulate(rank, world_size, X, y, weights, micro_batch, accumulate, lr, use_no_sync):
    """One optimizer step made of ``accumulate`` micro-batches of ``micro_batch`` examples per
    rank, with DDP; ``use_no_sync`` skips the all-reduce of all micro-batches but the last.
    Return the number of gradient all-reduces DDP ran and the weights after the step."""
    import contextlib

    import torch
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = DDP(torch_mlp(weights))
    calls = []

    def counting_hook(state, bucket):  # DDP's default all-reduce, counted
        calls.append(bucket.index())
        return default_hooks.allreduce_hook(state, bucket)

    model.register_comm_hook(None, counting_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    share = np.arange(rank, len(X), world_size)  # like DistributedSampler(shuffle=False)
    optimizer.zero_grad()
    for i in range(accumulate):
        idx = share[i * micro_batch : (i + 1) * micro_batch]
        last = i == accumulate - 1
        context = model.no_sync() if use_no_sync and not last else contextlib.nullcontext()
        with context:
            loss = loss_fn(model(torch.from_numpy(X[idx])), torch.from_numpy(y[idx]))
            (loss / accumulate).backward()
    optimizer.step()
    return {"allreduces": len(calls), "weights": _torch_weights(model.module, weights)}


def tf_autoshard(strategy, n, global_batch, policy):
    """Iterate once over ``range(n)`` batched by ``global_batch`` and distributed with
    ``experimental_distribute_dataset`` under the given ``AutoShardPolicy`` name; return the
    examples this worker's replicas saw, and the size of each replica batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, policy
    )
    dataset = tf.data.Dataset.range(n).batch(global_batch).with_options(options)
    seen, sizes = [], []
    for batch in strategy.experimental_distribute_dataset(dataset):
        for local in strategy.experimental_local_results(batch):
            seen += local.numpy().tolist()
            sizes.append(int(local.shape[0]))
    return {"seen": seen, "sizes": sizes}


def tf_step_losses(strategy, X, y, weights, batch_size, lr):
    """One distributed training step; return this worker's own replica value of the scaled
    loss (what a print inside the step shows) and the loss ``strategy.reduce`` sums over the
    replicas (the loss of the global batch)."""
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = keras_mlp(weights)
        optimizer = keras.optimizers.SGD(learning_rate=lr)
    replica_step = tf_replica_step(strategy, model, optimizer, batch_size)
    Xb, yb = next(iter(tf_sharded_batches(strategy, X, y, batch_size)))

    per_replica = strategy.run(tf.function(replica_step), args=(Xb, yb))
    own = [float(v) for v in strategy.experimental_local_results(per_replica)]
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
    return {"own": own, "reduced": total}

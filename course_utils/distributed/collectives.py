"""Collectives in the workers: what each rank holds after them, which reductions run, and how
long an all-reduce takes."""

import time

import numpy as np


def torch_collectives(rank, world_size):
    """Run ``all_reduce``, ``broadcast`` and ``all_gather`` on a small tensor that differs per
    rank (``[rank + 1, 10 * (rank + 1)]``); return what this rank holds after each."""
    import torch
    import torch.distributed as dist

    mine = torch.tensor([rank + 1.0, 10.0 * (rank + 1)])
    total = mine.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)  # in place: the sum over ranks, on every rank
    shared = mine.clone()
    dist.broadcast(shared, src=0)  # in place: rank 0's tensor, on every rank
    gathered = [torch.zeros_like(mine) for _ in range(world_size)]
    dist.all_gather(gathered, mine)  # every rank's tensor, in rank order, on every rank
    return {
        "mine": mine.tolist(),
        "all_reduce": total.tolist(),
        "broadcast": shared.tolist(),
        "all_gather": [t.tolist() for t in gathered],
    }


def torch_ddp_broadcast(rank, world_size, hidden=64):
    """Build a freshly initialised MLP with a different seed on every rank, wrap it in DDP, and
    return the sum of its first weight matrix before and after wrapping."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(rank)  # a different initialisation on every rank
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    )
    before = float(model[0].weight.sum())
    ddp = DDP(model)  # broadcasts rank 0's parameters and buffers to every rank
    return {"before": before, "after": float(ddp.module[0].weight.sum())}


def torch_allreduce_times(rank, world_size, sizes, repeats=10, warmup=2):
    """Time ``all_reduce`` of float32 tensors of each size (number of elements); return
    ``{size: [seconds per repeat]}``, every repeat started together after a barrier."""
    import torch
    import torch.distributed as dist

    times = {}
    for size in sizes:
        tensor = torch.ones(int(size))
        spans = []
        for i in range(warmup + repeats):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            if i >= warmup:
                spans.append(time.perf_counter() - start)
        times[int(size)] = spans
    return times


def torch_cuda_allreduce(rank, world_size):
    """On a GPU machine, as one process per GPU with the NCCL backend: all-reduce a tensor on
    this rank's GPU; return its value (``world_size * (world_size + 1) / 2`` everywhere)."""
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)  # one process per GPU: rank r uses GPU r
    tensor = torch.full((4,), float(rank + 1), device=f"cuda:{rank}")
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def _rank(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver.task_id if resolver is not None and resolver.task_id is not None else 0


def tf_collectives(strategy):
    """Run an all-reduce, an all-gather and a broadcast on a small tensor that differs per
    replica (``[i + 1, 10 * (i + 1)]`` on replica ``i``); return, for each replica in this
    process, what it holds after each (lists indexed by local replica)."""
    import tensorflow as tf

    def mine():
        i = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.cast(tf.stack([i + 1, 10 * (i + 1)]), tf.float32)

    @tf.function
    def exchange():
        ctx = tf.distribute.get_replica_context()
        value = mine()
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)  # the sum over replicas
        gathered = ctx.all_gather(value[None, :], axis=0)  # every replica's tensor, in order
        return value, total, gathered

    def local(per_replica):
        return [t.numpy().tolist() for t in strategy.experimental_local_results(per_replica)]

    value, total, gathered = strategy.run(exchange)
    with strategy.scope():  # a new variable: the first replica's initial value, everywhere
        shared = tf.Variable(local(value)[0])
    return {
        "mine": local(value),
        "all_reduce": local(total),
        "broadcast": [v.numpy().tolist() for v in strategy.experimental_local_results(shared)],
        "all_gather": local(gathered),
    }


def tf_allreduce_times(strategy, sizes, repeats=10, warmup=2):
    """Time an all-reduce of float32 tensors of each size (number of elements); return
    ``{size: [seconds per repeat]}``, every repeat started together after a small all-reduce."""
    import tensorflow as tf

    @tf.function  # traced once per tensor size, in the warm-up
    def all_reduce(x):
        return strategy.run(_all_reduce_sum, args=(x,))

    def on_replicas(n):  # a tensor of n elements on this worker's replica device(s)
        return strategy.experimental_distribute_values_from_function(lambda _: tf.ones([n]))

    barrier = on_replicas(1)
    times = {}
    for size in sizes:
        tensor = on_replicas(int(size))
        spans = []
        for i in range(warmup + repeats):
            _local(strategy, all_reduce(barrier))  # a barrier: both workers start together
            start = time.perf_counter()
            _local(strategy, all_reduce(tensor))  # .numpy() waits for the result
            if i >= warmup:
                spans.append(time.perf_counter() - start)
        times[int(size)] = spans
    return times


def _all_reduce_sum(x):
    import tensorflow as tf

    # tf.identity places the input on the replica's device, which the all-reduce needs
    return tf.distribute.get_replica_context().all_reduce("sum", tf.identity(x))


def _local(strategy, per_replica):
    """Return the first local replica's value of a distributed result as a NumPy array."""
    return strategy.experimental_local_results(per_replica)[0].numpy()


def _quartiles(values):
    q1, median, q3 = np.percentile(np.asarray(values, float), [25, 50, 75])
    return float(median), float(q3 - q1)


def step_stats(per_rank):
    """Summarise step times from several workers (lists of seconds, None for idle workers):
    a step lasts as long as its slowest worker. Returns ``(median, interquartile range)``."""
    active = [np.asarray(t, float) for t in per_rank if t is not None]
    if not active:
        raise ValueError("no worker timed anything")
    return _quartiles(np.max(np.stack(active), axis=0))


def allreduce_summary(per_rank, bytes_per_element=4):
    """Summarise :func:`torch_allreduce_times` / :func:`tf_allreduce_times` results from all
    workers. Returns ``{"elements", "bytes", "seconds" (median of the slowest worker per
    repeat), "spread" (interquartile range), "gb_per_s" (bytes / seconds / 1e9)}`` as lists."""
    sizes = sorted(per_rank[0])
    rows = [step_stats([times[size] for times in per_rank]) for size in sizes]
    nbytes = [size * bytes_per_element for size in sizes]
    return {
        "elements": sizes,
        "bytes": nbytes,
        "seconds": [median for median, _ in rows],
        "spread": [spread for _, spread in rows],
        "gb_per_s": [b / median / 1e9 for b, (median, _) in zip(nbytes, rows, strict=True)],
    }


def torch_reduce_ops(rank, world_size, ops=("SUM", "AVG", "MAX", "MIN", "PRODUCT")):
    """All-reduce ``rank + 1`` with each of ``ops`` (names of ``dist.ReduceOp``); return what
    each gave on this rank, or the error's type where the backend refused it."""
    import torch
    import torch.distributed as dist

    results = {}
    for name in ops:
        value = torch.tensor([rank + 1.0])
        try:
            dist.all_reduce(value, op=getattr(dist.ReduceOp, name))
            results[name] = value.item()
        except (RuntimeError, ValueError) as err:
            results[name] = type(err).__name__
    return results

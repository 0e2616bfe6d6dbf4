"""Whole training scripts and their launchers: torchrun for PyTorch, one process per TF_CONFIG
for TensorFlow."""

import json
import os
import subprocess
import sys
import time

from .processes import _STARTED, HOST, WorkerError, WorkerTimeout, free_port
from .tf_pool import tf_config
from .torch_pool import _stop_process

TORCHRUN_SCRIPT = '''"""Train the course's MLP with DDP. Run: torchrun --nproc-per-node=2 train_ddp.py"""

import torch.distributed as dist

import course_utils as cu


def main():
    dist.init_process_group("gloo")  # rank, world size, the store's address: from torchrun
    rank, world_size = dist.get_rank(), dist.get_world_size()
    splits = cu.load_digits(seed=0)
    weights = cu.training.init_weights(cu.training.MLP_SPEC, seed=0)
    losses, _ = cu.distributed.torch_train_ddp(
        rank, world_size, splits.X_train, splits.y_train, weights, steps=5, batch_size=16, lr=0.1
    )
    print(f"rank {rank} of {world_size}: losses {[round(x, 4) for x in losses]}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


def run_torchrun(command, cwd, timeout=300):
    """Run a ``torchrun ...`` command (``torchrun`` is replaced by this Python's
    ``-m torch.distributed.run``) with gloo kept on the loopback interface; return the lines it
    printed. The whole process group is killed after ``timeout`` seconds."""
    import signal

    if command[0] == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", *command[1:]]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"} if sys.platform.startswith("linux") else None
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers too can be stopped as one group
    )
    _STARTED.add(proc.pid)

    def kill_all():
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and the workers it started
        else:
            proc.kill()

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all()
        proc.communicate()
        raise WorkerTimeout(f"torchrun did not finish within {timeout} s (stopped)") from None
    finally:
        if proc.poll() is None:
            kill_all()
            proc.wait()
    if proc.returncode != 0:
        raise WorkerError(f"torchrun failed with code {proc.returncode}:\n{err[-2000:]}")
    return out.strip().splitlines()


TF_SCRIPT = '''"""Train the course's MLP with MultiWorkerMirroredStrategy.
Run on every worker, each with its own TF_CONFIG: TF_CONFIG='{...}' python train_mwms.py"""

import course_utils as cu

cu.quiet()  # before TensorFlow is imported (make_strategy imports it)


def main():
    strategy = cu.distributed.make_strategy()  # reads TF_CONFIG
    rank = strategy.cluster_resolver.task_id
    splits = cu.load_digits(seed=0)
    weights = cu.training.init_weights(cu.training.MLP_SPEC, seed=0)
    losses, _ = cu.distributed.tf_train_distributed(
        strategy, splits.X_train, splits.y_train, weights, steps=5, batch_size=16, lr=0.1
    )
    print(f"worker {rank} of {strategy.num_replicas_in_sync}: losses {[round(x, 4) for x in losses]}")


if __name__ == "__main__":
    main()
'''


def run_tf_script(script, world_size, cwd, timeout=300):
    """Start ``world_size`` processes running ``python script``, each with its own
    ``TF_CONFIG`` (free ports on 127.0.0.1) and the course's quiet environment; return the lines
    they printed. All of them are killed after ``timeout`` seconds."""
    from ..quiet import ENV

    addresses = [f"{HOST}:{free_port()}" for _ in range(world_size)]
    procs = []
    try:
        for rank in range(world_size):
            env = {**os.environ, **ENV, "TF_CONFIG": json.dumps(tf_config(addresses, rank))}
            proc = subprocess.Popen(
                [sys.executable, str(script)],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            _STARTED.add(proc.pid)
        deadline = time.monotonic() + timeout
        outputs = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise WorkerTimeout(
                    f"the workers did not finish within {timeout} s (stopped)"
                ) from None
            if proc.returncode != 0:
                raise WorkerError(f"a worker failed with code {proc.returncode}:\n{err[-2000:]}")
            outputs += out.strip().splitlines()
        return outputs
    finally:
        for proc in procs:
            _stop_process(proc, polite=lambda: None, grace=0.0)


TORCH_TRAIN_SCRIPT = '''"""Data-parallel training of a small MLP. Run: torchrun --nproc-per-node=2 train_ddp.py"""

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import course_utils as cu

EPOCHS, BATCH, LR = 2, 16, 0.1  # BATCH: examples per worker and step


def main():
    dist.init_process_group("gloo")  # rank, world size, the store's address: from torchrun
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # DDP also copies rank 0's initial weights to every rank
    splits = cu.load_digits(seed=0)
    train = TensorDataset(torch.from_numpy(splits.X_train), torch.from_numpy(splits.y_train))
    sampler = DistributedSampler(train, shuffle=True, seed=0)  # this rank's share of the data
    loader = DataLoader(train, batch_size=BATCH, sampler=sampler)
    layers = [torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)]
    model = DDP(torch.nn.Sequential(*layers))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)  # a new order every epoch
        sums = torch.zeros(2)  # this rank's summed loss and number of examples
        for Xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(Xb), yb)
            loss.backward()  # DDP all-reduces the gradients during the backward pass
            optimizer.step()
            sums += torch.tensor([loss.item() * len(yb), len(yb)])
        dist.all_reduce(sums)  # the sums over every rank, on every rank
        if rank == 0:
            print(f"epoch {epoch}: loss {sums[0] / sums[1]:.4f} over {int(sums[1])} examples")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''

TF_TRAIN_SCRIPT = '''"""Data-parallel training of a small MLP with MultiWorkerMirroredStrategy.
Run on every worker, each with its own TF_CONFIG: TF_CONFIG='{...}' python train_mwms.py"""

import course_utils as cu

cu.quiet()  # keeps TensorFlow's C++ log lines out of the output: before the import
import keras
import tensorflow as tf

EPOCHS, BATCH, LR = 2, 16, 0.1  # BATCH: examples per worker and step


def main():
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    rank = strategy.cluster_resolver.task_id
    global_batch = BATCH * strategy.num_replicas_in_sync
    splits = cu.load_digits(seed=0)
    data = tf.data.Dataset.from_tensor_slices((splits.X_train, splits.y_train))
    data = data.shuffle(len(splits.X_train), seed=0).batch(global_batch)  # same seed everywhere
    batches = strategy.experimental_distribute_dataset(data)  # shards it over the workers
    with strategy.scope():
        keras.utils.set_random_seed(0)
        layers = [keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
        model = keras.Sequential([keras.Input((64,)), *layers])
        optimizer = keras.optimizers.SGD(learning_rate=LR)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica_step(Xb, yb):
        with tf.GradientTape() as tape:
            per_example = loss_fn(yb, model(Xb, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))  # all-reduces them
        return tf.stack([tf.reduce_sum(per_example), tf.cast(tf.size(yb), tf.float32)])

    @tf.function
    def train_step(Xb, yb):
        sums = strategy.run(replica_step, args=(Xb, yb))
        return strategy.reduce("SUM", sums, axis=None)  # the sums over every replica

    for epoch in range(EPOCHS):
        sums = sum(train_step(Xb, yb) for Xb, yb in batches)
        if rank == 0:
            print(f"epoch {epoch}: loss {sums[0] / sums[1]:.4f} over {int(sums[1])} examples")


if __name__ == "__main__":
    main()
'''

KERAS_FIT_SCRIPT = '''"""Data-parallel training of a small MLP with Keras fit. Run: python train_fit.py"""

import course_utils as cu

cu.quiet()  # keeps TensorFlow's C++ log lines out of the output: before the import
import keras
import tensorflow as tf

strategy = tf.distribute.MirroredStrategy()  # every GPU of this machine (here: the CPU)
with strategy.scope():
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    model = keras.Sequential([keras.Input((64,)), *layers])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
splits = cu.load_digits(seed=0)
global_batch = 16 * strategy.num_replicas_in_sync
model.fit(splits.X_train, splits.y_train, batch_size=global_batch, epochs=2, verbose=2)
'''

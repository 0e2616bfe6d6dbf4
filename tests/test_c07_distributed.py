"""07_distributed: worker pools that always stop, collectives, parity and the checkers.

Parity. Two workers with per-worker batch b and averaged gradients make the updates of one
process with batch 2b; the only difference is the order of float32 additions in the
all-reduce, a few units in the 8th digit after the notebooks' 5 steps (they store ~3e-8 and
~6e-8). The tests allow 1e-5 (absolute, on weights of size ~0.1-1) and relative 1e-5 on losses
of ~2.4: a hundred times the rounding, while a real difference (a missing average, another
batch, another start) moves the weights by 1e-2 or more. The PyTorch and TensorFlow runs are
compared the same way, since both start from the same NumPy weights and see the same batches.

Processes. Every pool test checks that no process the pool started is left running, that
this test process has no new child process, and that nothing listens on the pool's ports any
more; the TensorFlow pool's protocol is tested with a stand-in worker that does not import
TensorFlow, so that the whole launcher runs in about a second.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import course_utils as cu
from course_utils import distributed as D
from course_utils import training
from course_utils.checks import check
from course_utils.records import read_records

cu.quiet()

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_ATOL = 1e-5
LOSS_RTOL = 1e-5


def records(track):
    return {
        r["name"]: r for r in read_records(ROOT / "notebooks" / "07_distributed" / f"{track}.ipynb")
    }


@pytest.fixture(scope="module")
def stored():
    return records("pytorch"), records("tensorflow")


def children():
    """Pids of this process's live child processes (Linux), without multiprocessing's
    resource tracker (a process Python keeps running once the spawn method was used)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and "resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found


linux_only = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


def assert_all_stopped(pool, before):
    assert not pool.running
    assert not [pid for pid in pool.pids if D.alive(pid)]
    assert children() - before == set()
    assert all(D.port_is_free(port) for port in pool.ports)


# ---------------------------------------------------------------- functions that start no process


@linux_only
def test_listening_sockets_tell_loopback_from_every_interface():
    with socket.socket() as local, socket.socket() as everywhere:
        local.bind(("127.0.0.1", 0))
        local.listen()
        port = local.getsockname()[1]
        assert f"127.0.0.1:{port}" in D.listening_sockets(os.getpid())
        assert D.only_loopback(os.getpid()) is True
        assert not D.port_is_free(port)
        everywhere.bind(("0.0.0.0", 0))
        everywhere.listen()
        assert D.only_loopback(os.getpid()) is False
    assert D.port_is_free(port)


def test_free_port_is_free_and_alive_knows_a_finished_child():
    assert D.port_is_free(D.free_port())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert D.alive(os.getpid()) and not D.alive(child.pid)


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "[/__w/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by "
            "peer [127.0.0.1]:8066. This is typically caused by a remote worker crashing. Check "
            "the logs of the remote worker before reporting an error. GLHF!",
            "RuntimeError: Connection closed by peer <address>",
        ),
        (
            'in user code:\n\n    File "x.py", line 3, in f  *\n        y()\n\n'
            "    ValueError: destinations can not be empty\n",
            "RuntimeError: destinations can not be empty",
        ),
        (
            "Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at (most "
            'recent call last):\n  File "w.py", line 19, in <module>\n\nCollective has timed '
            "out during execution.\n\t [[{{node CollectiveReduceV2}}]] [Op:__inference_step_33]",
            "RuntimeError: Collective has timed out during execution",
        ),
        (
            "Attempt to convert a value (PerReplica:{\n  0: <tf.Tensor: shape=(2,)>\n}) with an "
            "unsupported type to a Tensor.",
            "RuntimeError: Attempt to convert a value (PerReplica:{ ... }) with an unsupported "
            "type to a Tensor",
        ),
        (
            "Timed out after 3 seconds waiting for clients. 1/2 clients joined.",
            "RuntimeError: Timed out after 3 seconds waiting for clients. 1/2 clients joined",
        ),
    ],
)
def test_short_error_keeps_what_a_reader_needs(message, expected):
    assert D.short_error(RuntimeError(message)) == expected


def _before(X, y, lr):
    """Doc."""
    model = make(X)  # noqa: F821 - only read, never run
    for _ in range(3):
        step(model, y)  # noqa: F821
    return model


def _after(rank, X, y, lr):
    model = make(X)  # noqa: F821
    with scope():  # noqa: F821
        for _ in range(3):
            step(model, y)  # noqa: F821

    return sync(model)  # noqa: F821


def test_changed_lines_ignores_docstrings_comments_and_indentation():
    cost = D.changed_lines(_before, _after)
    assert cost["before"] == 5 and cost["after"] == 6
    # the def line and the return line changed, `with scope():` was added; the loop only moved
    assert (cost["changed"], cost["added"], cost["removed"]) == (3, 3, 2)
    assert "+     with scope():" in cost["listing"]
    assert "          for _ in range(3):" in cost["listing"]


@pytest.mark.parametrize("track", ["pytorch", "tensorflow"])
def test_the_notebooks_record_the_current_line_count(stored, track):
    """The claims lab reads this record: it must be what the module's code says today."""
    pt, tf = stored
    entry = (pt if track == "pytorch" else tf)["lines_changed_for_distribution"]
    cost = D.distribution_cost(track)
    assert entry["value"] == cost["changed"] > 0
    assert cost["listing"][0].startswith("- def ") and cost["listing"][1].startswith("+ def ")


def test_summaries_of_timings():
    assert D.step_stats([[1.0, 2.0, 3.0, 4.0, 5.0], None]) == (3.0, 2.0)
    assert D.step_stats([[1.0, 1.0], [3.0, 0.0]]) == (2.0, 1.0)  # a step lasts its slowest worker
    summary = D.allreduce_summary([{4: [1e-3, 1e-3]}, {4: [2e-3, 2e-3]}])
    assert summary["bytes"] == [16] and summary["seconds"] == [2e-3]
    assert summary["gb_per_s"] == pytest.approx([16 / 2e-3 / 1e9])
    with pytest.raises(ValueError):
        D.step_stats([None])


def test_tf_config_names_every_worker_and_this_one():
    config = D.tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)
    assert config == {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1},
    }
    assert json.loads(json.dumps(config)) == config


def test_worker_functions_must_be_importable():
    def local():
        pass

    with pytest.raises(cu.CourseError, match="Source.of"):
        D._ref(local)
    source = D.Source.of(_before)
    assert source.name == "_before" and source.code.startswith("def _before")
    assert D._ref(D.torch_collectives) == (
        "import",
        "course_utils.distributed.collectives",
        "torch_collectives",
    )


def test_worker_error_kinds_leave_out_the_text():
    err = D.WorkerError(
        "x", {0: "raised RuntimeError: Connection reset", 1: "exited with code 3", 2: "finished"}
    )
    assert err.kinds == {0: "raised", 1: "exited with code 3", 2: "finished"}


# ---------------------------------------------------------------- the PyTorch pool


@pytest.fixture(scope="module")
def torch_pool():
    pytest.importorskip("torch")
    before = children()
    pool = D.TorchWorkers(2, timeout=15).start()
    yield pool, before
    pool.close()


def _digits(steps=3, batch=8, world_size=2):
    splits = cu.load_digits(seed=0)
    n = steps * batch * world_size
    return splits.X_train[:n], splits.y_train[:n]


def test_torch_workers_listen_on_loopback_and_run_collectives(torch_pool):
    pool, _ = torch_pool
    assert pool.running and len(pool.pids) == 2
    if Path("/proc/net/tcp").exists():
        assert all(D.only_loopback(pid) for pid in pool.pids)
    held = pool.run(D.torch_collectives)
    assert held[0]["all_reduce"] == held[1]["all_reduce"] == [3.0, 30.0]
    assert held[1]["broadcast"] == [1.0, 10.0]
    assert held[0]["all_gather"] == [[1.0, 10.0], [2.0, 20.0]]


def test_ddp_with_two_workers_equals_one_process_with_twice_the_batch(torch_pool):
    pool, _ = torch_pool
    X, y = _digits()
    weights = training.init_weights(training.MLP_SPEC, seed=0)
    ddp = pool.run(D.torch_train_ddp, X=X, y=y, weights=weights, steps=3, batch_size=8, lr=0.1)
    single_losses, single = D.torch_train(X, y, weights, 3, 16, 0.1)
    assert training.max_difference(ddp[0][1], ddp[1][1]) == 0.0
    assert training.max_difference(ddp[0][1], single) < WEIGHT_ATOL
    assert training.max_difference(single, weights) > 1e-3  # training moved the weights
    np.testing.assert_allclose(np.mean([r[0] for r in ddp], axis=0), single_losses, rtol=LOSS_RTOL)


def test_padded_evaluation_counts_an_example_twice_and_exact_shards_do_not(torch_pool):
    pool, _ = torch_pool
    splits = cu.load_digits(seed=0)
    X, y = splits.X_val[:101], splits.y_val[:101]
    weights = training.init_weights(training.MLP_SPEC, seed=0)
    padded = pool.run(D.torch_evaluate, X=X, y=y, weights=weights, padded=True)
    exact = pool.run(D.torch_evaluate, X=X, y=y, weights=weights, padded=False)
    seen = [i for r in padded for i in r["indices"]]
    assert padded[0]["count"] == 102 and len(set(seen)) == 101  # the mistake: one duplicate
    assert exact[0]["count"] == 101 and sorted(i for r in exact for i in r["indices"]) == list(
        range(101)
    )
    truth = D.torch_accuracy(X, y, weights)
    # the fix: all-reduced sums give the one-process accuracy on every rank
    assert exact[0]["accuracy"] == exact[1]["accuracy"] == pytest.approx(truth, abs=1e-12)
    # rank 0's own figure describes only its share
    assert exact[0]["own_accuracy"] == pytest.approx(
        float((D.torch_mlp_predict(X[0::2], weights) == y[0::2]).mean())
    )


def test_no_sync_halves_the_all_reduces_and_keeps_the_update(torch_pool):
    pool, _ = torch_pool
    X, y = _digits()
    weights = training.init_weights(training.MLP_SPEC, seed=0)
    kwargs = dict(X=X, y=y, weights=weights, micro_batch=4, accumulate=2, lr=0.1)
    every = pool.run(D.torch_accumulate, use_no_sync=False, **kwargs)
    once = pool.run(D.torch_accumulate, use_no_sync=True, **kwargs)
    assert every[0]["allreduces"] == 2 and once[0]["allreduces"] == 1
    single = D.torch_train(X, y, weights, 1, 16, 0.1)[1]
    for result in (every, once):
        assert training.max_difference(result[0]["weights"], single) < WEIGHT_ATOL


def test_gloo_runs_every_reduction_it_is_asked_for(torch_pool):
    pool, _ = torch_pool
    results = pool.run(D.torch_reduce_ops)
    assert (
        results[0]
        == results[1]
        == {
            "SUM": 3.0,
            "AVG": 1.5,
            "MAX": 2.0,
            "MIN": 1.0,
            "PRODUCT": 2.0,
        }
    )


def test_set_epoch_changes_the_order_and_its_absence_repeats_it():
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(range(64), 2, rank=0, shuffle=True, seed=0)
    frozen = [list(sampler) for _ in range(3)]
    assert frozen[0] == frozen[1] == frozen[2]  # the mistake
    fresh = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        fresh.append(list(sampler))
    assert fresh[0] != fresh[1] and fresh[1] != fresh[2]  # the fix


def test_torch_pool_stops_everything_on_close(torch_pool):
    pool, before = torch_pool
    pool.close()
    assert_all_stopped(pool, before)
    with pytest.raises(cu.CourseError, match="stopped"):
        pool.run(D.torch_collectives)


RAISE_ON_RANK_1 = D.Source(
    "fail",
    "def fail(rank, world_size):\n"
    "    if rank == 1:\n"
    "        raise ValueError('rank 1 gives up')\n"
    "    dist.barrier()  # rank 0 would wait here for ever\n",
)
HANG = D.Source("hang", "def hang(rank, world_size):\n    import time\n    time.sleep(600)\n")


@pytest.mark.parametrize(
    "fn, kinds, error",
    [
        (RAISE_ON_RANK_1, {0: "stopped", 1: "raised"}, D.WorkerError),
        (HANG, {0: "stopped", 1: "stopped"}, D.WorkerTimeout),
    ],
    ids=["raises", "hangs"],
)
def test_a_failing_worker_stops_the_whole_pool_in_bounded_time(fn, kinds, error):
    pytest.importorskip("torch")
    before = children()
    pool = D.TorchWorkers(2, timeout=30, run_timeout=4, fault_grace=1)
    start = time.monotonic()
    with pytest.raises(error) as raised, pool:
        pool.run(fn)
    assert raised.value.kinds == kinds
    assert pool.failure is raised.value
    assert time.monotonic() - start < 60
    assert_all_stopped(pool, before)


def test_a_worker_that_never_joins_ends_in_an_error_and_nothing_stays():
    pytest.importorskip("torch")
    before = children()
    pool = D.TorchWorkers(2, started=1, timeout=2)
    with pytest.raises(D.WorkerError, match="clients joined") as raised:
        pool.start()
    assert raised.value.kinds == {0: "raised"}
    assert_all_stopped(pool, before)


# ---------------------------------------------------------------- the TensorFlow pool's protocol

STAND_IN = """
import os
import time

from course_utils import distributed


def load(settings):
    return {"time": time}


def context(settings):
    # like MultiWorkerMirroredStrategy(): worker 0 waits until worker 1 has joined
    flag = os.environ.get("STAND_IN_JOINED")
    if flag and settings["rank"] == 1:
        open(flag, "w").close()
    while flag and not os.path.exists(flag):
        time.sleep(0.02)
    return "context"


distributed.serve(load, context)
"""


@pytest.fixture
def stand_in(tmp_path):
    """TFWorkers whose workers speak the same protocol but import no framework."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)

    class StandIn(D.TFWorkers):
        command = (sys.executable, str(script))

    return StandIn


ECHO = D.Source("echo", "def echo(context, **kwargs):\n    return context, kwargs\n")
NAP = D.Source("nap", "def nap(context, seconds):\n    time.sleep(seconds)\n")


def test_tf_pool_runs_calls_and_stops_on_close(stand_in):
    before = children()
    with stand_in(2, start_timeout=60) as pool:
        assert pool.addresses == [f"127.0.0.1:{p}" for p in pool.ports]
        assert pool.run(ECHO, x=1) == [("context", {"x": 1}), ("context", {"x": 1})]
        with pytest.raises(ValueError, match="every TensorFlow worker"):
            pool.run_each({0: (ECHO, {})})
    assert_all_stopped(pool, before)


def test_tf_pool_reports_a_held_worker_and_goes_on_after_release(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("STAND_IN_JOINED", str(tmp_path / "joined"))
    before = children()
    pool = stand_in(2, hold=[1], start_timeout=60).start(wait=False)
    try:
        with pytest.raises(D.WorkerTimeout, match="worker 0 still waits .* for worker 1"):
            pool.wait_ready(timeout=0.5)
        assert pool.running  # waiting is not a failure: the worker may still come
        pool.release(1)
        assert pool.run(ECHO)[1] == ("context", {})
    finally:
        pool.close()
    assert_all_stopped(pool, before)


@pytest.mark.parametrize(
    "calls, kinds, error",
    [
        (
            {0: (ECHO, {}), 1: (D.exit_now, {})},
            {0: "finished", 1: "exited with code 3"},
            D.WorkerError,
        ),
        (
            {0: (NAP, {"seconds": 600}), 1: (ECHO, {})},
            {0: "stopped", 1: "finished"},
            D.WorkerTimeout,
        ),
    ],
    ids=["exits", "hangs"],
)
def test_tf_pool_stops_every_worker_when_one_fails(stand_in, calls, kinds, error):
    before = children()
    pool = stand_in(2, start_timeout=60, run_timeout=2).start()
    with pytest.raises(error) as raised:
        pool.run_each(calls)
    assert raised.value.kinds == kinds
    assert_all_stopped(pool, before)


def test_tf_pool_keeps_its_workers_when_every_worker_raised(stand_in):
    boom = D.Source("boom", "def boom(context):\n    raise KeyError('no')\n")
    with stand_in(2, start_timeout=60) as pool:
        with pytest.raises(D.WorkerError, match="KeyError"):
            pool.run(boom, keep_on_error=True)
        assert pool.running and pool.run(ECHO)[0] == ("context", {})


# ---------------------------------------------------------------- the stored records


def test_both_tracks_record_the_same_figures(stored):
    pt, tf = stored
    shared = {
        "lines_changed_for_distribution",
        "collective_results",
        "single_losses",
        "distributed_losses",
        "distributed_vs_single_max_diff",
        "distributed_output_layer",
        "resume_step",
        "resumed_vs_uninterrupted_max_diff",
        "time_to_first_distributed_step",
        "eval_counts",
        "script_lines",
    }
    assert shared <= set(pt), shared - set(pt)
    assert shared <= set(tf), shared - set(tf)
    # the appendix's timings are measured in full mode only, then in both tracks
    timings = set(TIMINGS)
    assert (timings <= set(pt)) == (timings <= set(tf))


def test_collectives_give_the_same_results_in_both_frameworks(stored):
    pt, tf = stored
    want = [
        {
            "mine": [1, 10],
            "all_reduce": [3, 30],
            "broadcast": [1, 10],
            "all_gather": [[1, 10], [2, 20]],
        },
        {
            "mine": [2, 20],
            "all_reduce": [3, 30],
            "broadcast": [1, 10],
            "all_gather": [[1, 10], [2, 20]],
        },
    ]
    assert pt["collective_results"]["value"] == tf["collective_results"]["value"] == want


@pytest.mark.parametrize("track", ["pytorch", "tensorflow"])
def test_each_track_distributed_equals_one_process(stored, track):
    entries = stored[0] if track == "pytorch" else stored[1]
    assert entries["distributed_vs_single_max_diff"]["value"] < WEIGHT_ATOL
    assert entries["resumed_vs_uninterrupted_max_diff"]["value"] < WEIGHT_ATOL
    np.testing.assert_allclose(
        entries["distributed_losses"]["value"], entries["single_losses"]["value"], rtol=LOSS_RTOL
    )


def test_the_two_frameworks_distributed_runs_agree(stored):
    pt, tf = stored
    for name in ("single_losses", "distributed_losses"):
        np.testing.assert_allclose(pt[name]["value"], tf[name]["value"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(
        pt["distributed_output_layer"]["value"],
        tf["distributed_output_layer"]["value"],
        rtol=0,
        atol=WEIGHT_ATOL,
    )
    losses = pt["distributed_losses"]["value"]
    assert losses[0] != pytest.approx(losses[-1], rel=1e-3)  # the losses did move
    assert pt["resume_step"]["value"] == tf["resume_step"]["value"] > 0


def test_tensorflow_in_process_strategy_and_fit_match(stored):
    _, tf = stored
    assert tf["mirrored_vs_single_max_diff"]["value"] < WEIGHT_ATOL
    assert tf["fit_vs_single_max_diff"]["value"] < WEIGHT_ATOL


TIMINGS = (
    "allreduce_seconds",
    "allreduce_gb_per_s",
    "allreduce_bytes",
    "step_time_1_worker",
    "step_time_2_workers",
    "step_time_2_workers_no_sync",
    "throughput_1_worker",
    "throughput_2_workers",
    "scaling_efficiency",
)


def test_traps_and_script_lines_are_recorded(stored):
    pt, tf = stored
    assert pt["eval_counts"]["value"] == {"padded": 102, "exact": 101}
    assert tf["eval_counts"]["value"] == {"padded": 202, "exact": 101}
    assert pt["allreduces_per_step"]["value"] == {"without no_sync": 2, "with no_sync": 1}
    assert pt["gloo_reductions"]["value"]["AVG"] == 1.5
    assert pt["script_lines"]["value"] == {
        "custom loop": len(D.script_lines(D.TORCH_TRAIN_SCRIPT)) + 1
    }
    assert tf["script_lines"]["value"] == {
        "custom loop": len(D.script_lines(D.TF_TRAIN_SCRIPT)) + 1,
        "fit": len(D.script_lines(D.KERAS_FIT_SCRIPT)) + 1,
    }


def test_timings_are_recorded_as_variable_and_plausible(stored):
    for entries in stored:
        assert entries["time_to_first_distributed_step"]["value"] > 0
        if "allreduce_bytes" not in entries:
            continue  # quick mode: the appendix's measurements were not run
        assert entries["allreduce_bytes"]["value"] == stored[0]["allreduce_bytes"]["value"]
        sizes = len(entries["allreduce_bytes"]["value"])
        for name in ("allreduce_seconds", "allreduce_gb_per_s"):
            assert len(entries[name]["value"]) == sizes and min(entries[name]["value"]) > 0
        for name in ("step_time_1_worker", "step_time_2_workers", "time_to_first_distributed_step"):
            assert entries[name]["tolerance"] is None and entries[name]["value"] > 0
        assert entries["step_time_1_worker"]["unit"] == "s"
        assert 0 < entries["scaling_efficiency"]["value"] < 2


# ---------------------------------------------------------------- direct cross-framework run


def test_one_process_training_agrees_across_frameworks():
    pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    X, y = _digits(steps=4, batch=16, world_size=1)
    weights = training.init_weights(training.MLP_SPEC, seed=2)
    pt_losses, pt_weights = D.torch_train(X, y, weights, 4, 16, 0.1)
    with tf.device("/CPU:0"):
        tf_losses, tf_weights = D.tf_train(X, y, weights, 4, 16, 0.1)
    np.testing.assert_allclose(pt_losses, tf_losses, rtol=LOSS_RTOL)
    assert training.max_difference(pt_weights, tf_weights) < WEIGHT_ATOL


# ---------------------------------------------------------------- checkers


def shard_right(n, rank, world_size):
    from torch.utils.data.distributed import DistributedSampler

    return list(DistributedSampler(range(n), world_size, rank, shuffle=False))


def shard_strided(n, rank, world_size):
    return list(range(n))[rank::world_size]  # uneven when n % world_size != 0


def shard_everything(n, rank, world_size):
    return list(range(n))


def shard_stub(n, rank, world_size):
    raise NotImplementedError("Exercise: write your code here")


@pytest.mark.parametrize(
    "answer, status, words",
    [
        (shard_right, "passed", "DistributedSampler"),
        (shard_strided, "wrong", "different numbers"),
        (shard_everything, "wrong", "overlap"),
        (shard_stub, "not solved", "NotImplementedError"),
    ],
)
def test_shard_checker(answer, status, words):
    pytest.importorskip("torch")
    result = check("07_distributed.pytorch.shard_indices", answer)
    assert result.status == status
    assert words in result.message


def average_without_dividing(model, world_size):
    for param in model.parameters():
        dist.all_reduce(param.grad)  # noqa: F821 - runs in the workers, where dist is defined


def average_stub(model, world_size):
    raise NotImplementedError("Exercise: write your code here")


def test_average_gradients_checker_catches_a_missing_division():
    pytest.importorskip("torch")
    result = check("07_distributed.pytorch.average_gradients", average_without_dividing)
    assert result.status == "wrong", result.text()
    assert "divide by world_size" in result.hint
    assert check("07_distributed.pytorch.average_gradients", average_stub).status == "not solved"


def tf_shard_uneven(dataset, rank, world_size):
    return dataset.shard(world_size, rank)  # 10 examples on 3 workers: 4, 3, 3


def tf_replica_mean(labels, logits, global_batch_size):
    import keras
    import tensorflow as tf

    per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return tf.reduce_mean(per_example)  # divides by the replica's batch, not the global one


def tf_model_outside_scope(strategy, weights, lr):
    import keras

    model = D.keras_mlp(weights)  # built outside strategy.scope(): plain variables
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.mark.parametrize(
    "name, answer, words",
    [
        ("shard", tf_shard_uneven, "different numbers"),
        ("replica_loss", tf_replica_mean, "twice too large"),
        ("setup", tf_model_outside_scope, "not distributed"),
    ],
)
def test_tensorflow_checkers_catch_the_classic_mistakes(name, answer, words):
    """Wrong by construction on any machine, with however many replicas this process has
    (the right answers pass in the executed solutions notebook, under two replicas)."""
    pytest.importorskip("tensorflow")
    result = check(f"07_distributed.tensorflow.{name}", answer)
    assert result.status == "wrong", result.text()
    assert words in result.text()


# ---------------------------------------------------------------- whole scripts, launched


def test_script_lines_leave_out_docstring_comments_and_blanks():
    text = '"""Doc\nstring."""\n\nimport os  # a comment\n\n# only a comment\nprint(os.sep)\n'
    assert D.script_lines(text) == ["import os", "print(os.sep)"]


def _epochs(lines):
    epochs = [line for line in lines if line.startswith("epoch")]
    losses = [float(line.split("loss ")[1].split()[0]) for line in epochs]
    seen = [int(line.split("over ")[1].split()[0]) for line in epochs]
    return losses, seen


def test_the_torchrun_script_trains_and_leaves_nothing_behind(tmp_path):
    pytest.importorskip("torch")
    before = children()
    script = tmp_path / "train_ddp.py"
    script.write_text(D.TORCH_TRAIN_SCRIPT)
    port = D.free_port()
    command = [
        "torchrun",
        "--nproc-per-node=2",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        script.name,
    ]
    losses, seen = _epochs(D.run_torchrun(command, cwd=tmp_path, timeout=240))
    n = len(cu.load_digits(seed=0).X_train)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert seen == [n + n % 2] * 2  # DistributedSampler pads an odd set by one example
    assert children() - before == set()
    assert D.port_is_free(port)


def test_the_tf_config_script_trains_and_leaves_nothing_behind(tmp_path):
    pytest.importorskip("tensorflow")
    before = children()
    script = tmp_path / "train_mwms.py"
    script.write_text(D.TF_TRAIN_SCRIPT)
    losses, seen = _epochs(D.run_tf_script(script, 2, cwd=tmp_path, timeout=300))
    n = len(cu.load_digits(seed=0).X_train)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert seen == [n, n]  # sharded by data: every example once
    assert children() - before == set()


# ---------------------------------------------------------------- TensorFlow traps, in workers


@pytest.fixture(scope="module")
def tf_pool():
    pytest.importorskip("tensorflow")
    pool = D.TFWorkers(2, collective_timeout=60).start()
    yield pool
    pool.close()


def test_autoshard_off_duplicates_every_example_and_auto_does_not(tf_pool):
    off = tf_pool.run(D.tf_autoshard, n=101, global_batch=32, policy="OFF")
    auto = tf_pool.run(D.tf_autoshard, n=101, global_batch=32, policy="AUTO")
    off_seen = [i for r in off for i in r["seen"]]
    auto_seen = [i for r in auto for i in r["seen"]]
    assert len(off_seen) == 202 and len(set(off_seen)) == 101  # the mistake
    assert sorted(auto_seen) == list(range(101))  # the fix


def test_distributed_dataset_splits_the_global_batch_between_replicas(tf_pool):
    wrong = tf_pool.run(D.tf_autoshard, n=64, global_batch=16, policy="AUTO")
    right = tf_pool.run(D.tf_autoshard, n=64, global_batch=32, policy="AUTO")
    assert set(wrong[0]["sizes"]) == {8}  # batched by the per-replica size: halved
    assert set(right[0]["sizes"]) == {16}


def test_one_replicas_loss_is_a_share_and_the_reduced_loss_is_the_global_one(tf_pool):
    X, y = _digits(steps=1, batch=16)
    weights = training.init_weights(training.MLP_SPEC, seed=0)
    step = tf_pool.run(D.tf_step_losses, X=X, y=y, weights=weights, batch_size=16, lr=0.1)
    single_losses, _ = D.tf_train(X, y, weights, 1, 32, 0.1)
    own = step[0]["own"][0] + step[1]["own"][0]
    assert step[0]["own"][0] < 0.75 * single_losses[0]  # the mistake: a share of the loss
    assert step[0]["reduced"] == pytest.approx(single_losses[0], rel=LOSS_RTOL)  # the fix
    assert own == pytest.approx(single_losses[0], rel=LOSS_RTOL)


def test_mwms_uses_the_coordination_service_not_its_python_health_check(tf_pool):
    for settings in tf_pool.run(D.tf_fault_settings):
        assert settings["python_health_check"] is False
        assert settings["coordination_service"] == "standalone"

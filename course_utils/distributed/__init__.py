"""Data-parallel training on one machine, in both frameworks, with workers that always stop.

PyTorch runs one process per worker, started with ``torch.multiprocessing`` (spawn) and joined
in a gloo process group (:class:`TorchWorkers`). TensorFlow runs one Python subprocess per
worker, configured by ``TF_CONFIG``, with ``MultiWorkerMirroredStrategy`` talking gRPC
(:class:`TFWorkers`). Every address is 127.0.0.1 and every port is chosen when the workers
start. Both pools start their workers once and run several experiments in them
(``workers.run(fn, **kwargs)`` returns one result per worker); every wait has a time limit, and
every process a pool started is stopped: on ``close()``, at the end of a ``with`` block, after
a worker failed or timed out, when the pool is garbage-collected or Python exits, and (a
watchdog inside each worker) when the process that started it disappears.

Worker functions live at module level so that worker processes can import them. The training
functions come in pairs, one process and distributed (:func:`torch_train` /
:func:`torch_train_ddp`, :func:`tf_train` / :func:`tf_train_distributed`), written as the same
code, and :func:`changed_lines` counts what distribution changed.

The package follows the lesson, one module per job: ``processes`` (ports, errors, how worker
functions travel), ``models`` (the shared model and the training pairs), ``torch_pool`` and
``tf_pool`` (the worker pools), ``launch`` (whole scripts and their launchers),
``collectives``, ``traps``, ``faults`` (fault drills) and ``scaling`` (the scaling benchmark).
Everything is re-exported here, so ``cu.distributed.NAME`` works for every name.
"""

from .collectives import (  # noqa: F401
    _all_reduce_sum,
    _local,
    _quartiles,
    _rank,
    allreduce_summary,
    step_stats,
    tf_allreduce_times,
    tf_collectives,
    torch_allreduce_times,
    torch_collectives,
    torch_cuda_allreduce,
    torch_ddp_broadcast,
    torch_reduce_ops,
)
from .faults import (  # noqa: F401
    exit_now,
    tf_fault_settings,
    tf_train_resumable,
    torch_train_resumable,
)
from .launch import (  # noqa: F401
    KERAS_FIT_SCRIPT,
    TF_SCRIPT,
    TF_TRAIN_SCRIPT,
    TORCH_TRAIN_SCRIPT,
    TORCHRUN_SCRIPT,
    run_tf_script,
    run_torchrun,
)
from .models import (  # noqa: F401
    TRAINING_PAIRS,
    _keras_weights,
    _strip_comment,
    _torch_weights,
    changed_lines,
    code_lines,
    distribution_cost,
    keras_fit_distributed,
    keras_mlp,
    logical_cpus,
    mlp_weights,
    script_lines,
    tf_train,
    tf_train_distributed,
    torch_accuracy,
    torch_mlp,
    torch_mlp_predict,
    torch_train,
    torch_train_ddp,
)
from .processes import (  # noqa: F401
    _ADDRESS,
    _INNER,
    _NOISE,
    _SOURCE_TAG,
    _STARTED,
    COLLECTIVE_TIMEOUT,
    HOST,
    JOIN_TIMEOUT,
    RUN_TIMEOUT,
    START_TIMEOUT,
    Source,
    WorkerError,
    WorkerTimeout,
    _address,
    _listening,
    _redirect_output,
    _ref,
    _resolve,
    _socket_inodes,
    _tail,
    _watch_parent,
    alive,
    free_port,
    leftover_processes,
    listening_sockets,
    listening_summary,
    only_loopback,
    port_is_free,
    short_error,
)
from .scaling import (  # noqa: F401
    tf_first_step,
    tf_scaling,
    torch_first_step,
    torch_fsdp_shards,
    torch_scaling,
)
from .tf_pool import (  # noqa: F401
    _BARRIERS,
    _PREFIX,
    TFWorkers,
    _decode,
    _encode,
    _read_lines,
    _read_messages,
    _stop_tf,
    _tf_barrier,
    _tf_before_call,
    _tf_context,
    _tf_load,
    make_strategy,
    serve,
    tf_config,
)
from .torch_pool import (  # noqa: F401
    TorchWorkers,
    _MPProcess,
    _Pool,
    _stop_process,
    _stop_torch,
    _torch_worker,
    init_worker,
    run_torch,
)
from .traps import (  # noqa: F401
    tf_autoshard,
    tf_step_losses,
    torch_accumulate,
    torch_evaluate,
)

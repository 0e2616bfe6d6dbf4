"""Checkers for 07_distributed: shard a data set, average gradients across workers, set up a
model for data-parallel training.

Every check has a time limit. The PyTorch gradient and setup checks run the student's function
(sent as source code) in two real worker processes (:class:`course_utils.distributed.
TorchWorkers`), which are always stopped: a wrong answer that leaves one worker waiting in a
collective ends in a timeout with an explanation, never in a hung notebook. The TensorFlow
checks run in this process under a ``MirroredStrategy`` over the notebook's logical CPUs.

One module per group of exercises: ``data_shards`` (exercise 1, both frameworks),
``pytorch_workers`` (the PyTorch checks, in worker processes) and ``tensorflow_strategy`` (the
TensorFlow checks, in this process); ``common`` holds what they share. Importing this package
registers the exercises, in that order (the order of the imports below); every name is
re-exported here.
"""

from .common import (  # noqa: F401
    CALL_TIMEOUT,
    CHECK_BATCH,
    CHECK_LR,
    CHECK_STEPS,
    GROUP_TIMEOUT,
    WORKER_TIMEOUT,
    _call,
    _check_data,
    _is_stub,
)
from .data_shards import (  # noqa: F401
    CASES,
    REMAINDER,
    SHARD_HINT,
    _judge_shards,
    _shard_message,
    shard_indices_torch,
    shard_tf,
)
from .pytorch_workers import (  # noqa: F401
    AVERAGE_HINT_TORCH,
    SETUP_HINT_TORCH,
    _close,
    _load,
    _max_abs,
    _one_process_params,
    _params,
    _run_answer_in_workers,
    _worker_namespace,
    average_gradients_torch,
    average_gradients_worker,
    setup_torch,
    setup_worker,
)
from .tensorflow_strategy import (  # noqa: F401
    LOSS_HINT_TF,
    SETUP_HINT_TF,
    _check_replica_loss_value,
    _replica_loss_tf,
    _setup_tf,
    _strategy,
    _tf_close,
    _tf_max_difference,
    _tf_quiet,
    _tf_reference,
    replica_loss_tf,
    setup_tf,
)

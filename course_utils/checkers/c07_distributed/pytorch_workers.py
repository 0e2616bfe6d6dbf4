"""The PyTorch checkers of 07_distributed: average gradients by hand with all_reduce, and set
up a model for data-parallel training. Each runs the student's function (sent as source code)
in two real worker processes, which are always stopped: a wrong answer that leaves one worker
waiting in a collective ends in a timeout with an explanation, never in a hung notebook.
"""

import numpy as np

from ...checks import Mismatch, NotSolved, exercise
from .common import (
    CHECK_BATCH,
    CHECK_LR,
    CHECK_STEPS,
    GROUP_TIMEOUT,
    WORKER_TIMEOUT,
    _check_data,
    _is_stub,
)

# ---------------------------------------------------------------- PyTorch workers for checks


def _run_answer_in_workers(checker_fn, answer, **kwargs):
    """Run ``checker_fn(rank, world_size, answer=Source, ...)`` in two PyTorch workers; return
    the per-rank results. Worker trouble becomes Mismatch, NotImplementedError stays itself."""
    from ...distributed import Source, TorchWorkers, WorkerError, WorkerTimeout

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
    from ...distributed import _resolve

    return _resolve(("source", answer.name, answer.code), _worker_namespace())


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def average_gradients_worker(rank, world_size, answer, X, y, weights):
    """In a worker: train CHECK_STEPS steps on this rank's batches, calling the student's
    ``average_gradients`` after every backward pass. Returns ``{"mine": the parameters,
    "local": the parameters of the same run without any averaging}`` (lists of arrays)."""
    import torch

    from ...distributed import torch_mlp

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
    from ...distributed import torch_train

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
    from ...training import MLP_SPEC, init_weights

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
    from ...training import MLP_SPEC, init_weights

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

"""PyTorch's side of the claims lab: every experiment of 09_claims_lab, written in PyTorch.

:mod:`course_utils.claims_tf` has the same functions, with the same names and arguments, in
TensorFlow. The harness (:mod:`course_utils.claims_worker`) calls them in a fresh process that
imports only PyTorch; a notebook can call them too. Every experiment returns plain JSON-ready
data (the structures :mod:`course_utils.claims` documents). This module imports PyTorch, so
``import course_utils`` does not import it: ``from course_utils import claims_torch``.
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from . import compiling, cpu, data, training
from .bench import benchmark
from .claims import experiments as claims
from .claims.catalogue import MODES as _MODES
from .memory import memory_figures

# ``claims`` is the plan and inputs both sides share (claims.experiments): the code the notebooks
# show reads ``claims.<name>`` as a notebook does, and each is ``course_utils.claims.<name>`` too.
FRAMEWORK = "pytorch"
MODES = _MODES[FRAMEWORK]


def configure(threads, device="auto"):
    """Use ``threads`` CPU threads and pick the device; return the setup facts (a dict)."""
    from .devices import torch_device

    torch.set_num_threads(threads)
    chosen = torch_device(device)
    backends = cpu.torch_backends()
    return {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "device": str(chosen),
        "accelerator": None if chosen.type == "cpu" else str(chosen),
        "kernels": f"{backends['capability']}, {backends['blas']}, oneDNN {backends['onednn']}",
    }


# ---------------------------------------------------------------- one model, one step


class CNN(torch.nn.Module):
    """C4's small CNN (:func:`course_utils.claims.cnn_spec`), channels first: two 3x3
    convolutions with ReLU and 2x2 max pooling, then a dense head."""

    def __init__(self, channels):
        super().__init__()
        c1, c2, side = channels
        self.conv1 = torch.nn.Conv2d(3, c1, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c1, c2, 3, padding=1)
        self.out = torch.nn.Linear(c2 * side * side, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.out(x.flatten(1))


def make_model(size, seed, device):
    """The model ``size`` describes, with the shared NumPy weights: the course's MLP
    ({"d_in", "hidden", "depth"}) or C4's CNN ({"kind": "cnn", "image", "channels"})."""
    if size.get("kind") == "cnn":
        model = CNN([*size["channels"], size["image"] // 4])
    else:
        model = compiling.torch_mlp(size["d_in"], size["hidden"], depth=size["depth"])
    weights = training.init_weights(claims.model_spec(size), seed)
    return training.load_torch(model, weights).to(device)


def make_step(model, mode, lr):
    """One SGD training step, eager or with ``torch.compile`` (the model only)."""
    net = torch.compile(model) if mode == "compiled" else model
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return training.torch_step(net, torch.nn.CrossEntropyLoss(), optimizer)


def data_batch(batch, device, size=None):
    """The first ``batch`` training images of the digits and their labels, on ``device``; for
    C4's CNN (``size``), its fixed NumPy batch, channels first."""
    if size is not None and size.get("kind") == "cnn":
        images, labels = claims.cnn_batch(size)
        X = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
        return X.to(device), torch.from_numpy(labels).to(device)
    splits = data.load_digits(seed=0)
    X = torch.from_numpy(splits.X_train[:batch]).to(device)
    return X, torch.from_numpy(splits.y_train[:batch]).to(device)


# ---------------------------------------------------------------- C3, C4: step time


def step_time(size, mode, lr, seed, device, warmup, repeats):
    """Time the first training step of a fresh model (compiling included) and the steady state."""
    X, y = data_batch(size["batch"], device, size)
    step = make_step(make_model(size, seed, device), mode, lr)
    first, steady = compiling.first_call_and_steady(
        lambda: step(X, y), device=device, warmup=warmup, repeats=repeats
    )
    return {"first_s": first, "times": steady.times}


# ---------------------------------------------------------------- C5, C6: memory


def training_memory(size, mode, steps, lr, seed, device):
    """Train a fresh model ``steps`` steps and return its memory figures (MiB)."""
    X, y = data_batch(size["batch"], device)
    model = make_model(size, seed, device)
    step = make_step(model, mode, lr)
    return memory_figures(lambda: step(X, y), steps, device, claims.parameter_count(size))


# ---------------------------------------------------------------- C7: accuracy over seeds


def seed_accuracies(seeds, epochs, batch, lr, device):
    """Train 05's MLP from each seed's shared weights on that seed's batches; test accuracies."""
    splits = data.load_digits(seed=0)
    X_test = torch.from_numpy(splits.X_test).to(device)
    accuracies = []
    for seed in seeds:
        model = make_model(claims.ACCURACY_SIZE, seed, device)
        step = make_step(model, "eager", lr)
        loader = data.torch_loader(splits.X_train, splits.y_train, batch, seed=seed, order="numpy")
        training.run_epochs(
            lambda X, y, step=step: step(X.to(device), y.to(device)), loader, epochs, progress=False
        )
        with torch.no_grad():
            logits = model(X_test).cpu().numpy()
        accuracies.append(training.accuracy_from_logits(logits, splits.y_test))
    return {"seeds": list(seeds), "test_accuracy": accuracies, "n_test": len(splits.y_test)}


# ---------------------------------------------------------------- C9: the same operations


def op_times(shapes, device, warmup, repeats, seed=0):
    """Time each operation of ``shapes`` on the same inputs as TensorFlow (PyTorch's layouts)."""
    inputs = claims.op_inputs(shapes, seed)

    def tensor(array):
        return torch.from_numpy(array).to(device)

    a, b = map(tensor, inputs["matmul"])
    image, kernel = inputs["conv2d"]
    x = tensor(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    w = tensor(training.oihw_from_hwio(kernel))  # HWIO -> OIHW
    u, v = map(tensor, inputs["add_relu"])
    s = tensor(inputs["softmax"][0])
    ops = {
        "matmul": lambda: a @ b,
        "conv2d": lambda: F.conv2d(x, w, padding=1),
        "add_relu": lambda: torch.relu(u + v),
        "sum": lambda: u.sum(),
        "softmax": lambda: torch.softmax(s, dim=1),
    }
    with torch.no_grad():
        return {
            name: {"times": benchmark(fn, device=device, warmup=warmup, repeats=repeats).times}
            for name, fn in ops.items()
        }


# ---------------------------------------------------------------- C1: define-by-run


def grow_until(x, limit=10.0):
    """Double ``x`` until its norm reaches ``limit``: how many times depends on the values."""
    steps = 0
    while x.norm() < limit:
        x = x * 2
        steps += 1
    return x.sum(), steps


def define_by_run(scales=(1.0, 0.01)):
    """Run :func:`grow_until` on two inputs of one shape; return what graph each one recorded."""
    steps, nodes, grads = [], [], []
    for scale in scales:
        x = torch.full((4,), scale, requires_grad=True)
        out, n = grow_until(x)
        nodes.append(claims.graph_size(out.grad_fn))  # the graph recorded while the code ran
        out.backward()
        steps.append(n)
        grads.append(int(x.grad[0]))  # 2 ** steps: exact
    torch._dynamo.reset()
    explained = torch._dynamo.explain(grow_until)(torch.full((4,), scales[0]))
    return {
        "loop_steps": steps,
        "graph_nodes": nodes,
        "gradients": grads,
        "graph_follows_data": nodes[0] != nodes[1],
        "compiled_graph_breaks": explained.graph_break_count,
    }


# ---------------------------------------------------------------- C2: debugging inside


class DebugBlock(torch.nn.Module):
    """A dense layer with ReLU, and the two debugging tools people reach for inside ``forward``."""

    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.dense(x))
        print("h =", h)  # an ordinary print
        breakpoint()  # an ordinary breakpoint: pdb stops here with h in scope
        return h.sum()


PDB_COMMANDS = ["p type(h).__name__", "p float(h.sum())"]


def debugging_inside(calls=3):
    """Call :class:`DebugBlock` eagerly and compiled; count what print and pdb showed."""
    block = training.load_torch(DebugBlock(), claims.debug_weights())
    x = torch.from_numpy(claims.DEBUG_INPUT)
    torch._dynamo.reset()
    modes = {"eager": block, "compiled": torch.compile(block, backend="eager")}
    return {
        mode: claims.debug_session(lambda fn=fn: fn(x), calls, PDB_COMMANDS)
        for mode, fn in modes.items()
    }


# ---------------------------------------------------------------- C8: moving to a GPU


def train(make_model, X, y, steps=5, lr=0.1):
    """Train on the CPU, as the code is first written; return the losses."""
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_on(device, make_model, X, y, steps=5, lr=0.1):
    """The same training on ``device``: what changes to use a GPU."""
    model = make_model().to(device)
    X, y = X.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def gpu_code_change(device):
    """Count the lines :func:`train_on` changes from :func:`train`, run both, compare losses."""
    X, y = data_batch(32, "cpu")

    def make_mlp():
        return make_model(claims.ACCURACY_SIZE, 0, "cpu")

    before, after = train(make_mlp, X, y), train_on(device, make_mlp, X, y)
    return {
        **claims.changed_lines(train, train_on),
        "device": str(device),
        "same_losses": bool(np.allclose(before, after, rtol=1e-4)),
        "unchanged_code_places_on": torch.zeros(1).device.type.upper(),
    }


# ---------------------------------------------------------------- C11: eager to graph


def branch(x):
    if x.sum() > 0:  # a data-dependent branch
        return x * 2
    return -x


def python_loop(x):
    parts = []
    for i in range(3):
        parts.append(x * i)
    return torch.stack(parts).sum(0)


def numpy_constant(x):
    return x * float(np.sqrt(2.0))


def keyword_options(x, **options):
    return x * options.get("scale", 2.0)


def mixed_dict(x):
    config = {"scale": 2.0, "name": "double"}
    return x * config["scale"]


def try_except(x):
    try:
        return x / x.sum()
    except ZeroDivisionError:
        return x


EXAMPLES = (branch, python_loop, numpy_constant, keyword_options, mixed_dict, try_except)


def _works(make, fn, inputs):
    """True when ``make(fn)`` builds and gives eager's result on every input."""
    try:
        graph = make(fn)
        return all(torch.allclose(graph(x), fn(x)) for x in inputs)
    except Exception:
        return False


def graph_transition():
    """Try TorchScript (script, trace) and torch.compile on ordinary Python functions."""
    inputs = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, -2.0, -4.0])]
    with warnings.catch_warnings(record=True) as caught, claims.quiet_native_stderr():
        warnings.simplefilter("always")
        script_ok = [f.__name__ for f in EXAMPLES if _works(torch.jit.script, f, inputs)]
        trace_ok = [
            f.__name__
            for f in EXAMPLES
            if _works(lambda g: torch.jit.trace(g, inputs[0]), f, inputs)
        ]
        torch._dynamo.reset()
        compile_ok = [
            f.__name__
            for f in EXAMPLES
            if _works(lambda g: torch.compile(g, backend="eager"), f, inputs)
        ]
    notes = sorted(
        {
            str(w.message)
            for w in caught
            if "torch.jit" in str(w.message) and "deprecated" in str(w.message)
        }
    )
    return {
        "examples": [f.__name__ for f in EXAMPLES],
        "deprecated": bool(notes),
        "warning": notes[0] if notes else None,
        "script_ok": script_ok,
        "trace_ok": trace_ok,
        "compile_ok": compile_ok,
    }


# ---------------------------------------------------------------- C12: distributed scripts

# C12: the complete script that trains 05's MLP on the digits in one process, and the same
# training data-parallel on every CPU core: launcher, process group and clean-up included.
SINGLE_SCRIPT = """
import torch
import torch.nn.functional as F
from course_utils import data


def main():
    splits = data.load_digits(seed=0)
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(splits.X_train), torch.from_numpy(splits.y_train)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for X, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
    print("done")


if __name__ == "__main__":
    main()
"""

DISTRIBUTED_SCRIPT = """
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from course_utils import data


def main(rank, world_size):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    splits = data.load_digits(seed=0)
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(splits.X_train), torch.from_numpy(splits.y_train)
    )
    sampler = torch.utils.data.distributed.DistributedSampler(dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, sampler=sampler)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = DDP(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for X, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
    if rank == 0:
        print("done")
    dist.destroy_process_group()


if __name__ == "__main__":
    world_size = 2
    mp.spawn(main, args=(world_size,), nprocs=world_size)
"""

DISTRIBUTED_ROUTES = {"DistributedDataParallel (mp.spawn)": (SINGLE_SCRIPT, DISTRIBUTED_SCRIPT)}


def distributed_scripts():
    """C12: count the complete scripts, one process vs data-parallel, for each route."""
    return claims.script_counts(DISTRIBUTED_ROUTES)

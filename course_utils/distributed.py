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
"""

import base64
import contextlib
import difflib
import inspect
import io
import itertools
import json
import os
import pickle
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass

import numpy as np

from .errors import CourseError

HOST = "127.0.0.1"
START_TIMEOUT = 180  # s: start a worker (interpreter, framework import) and form the group
RUN_TIMEOUT = 120  # s: one experiment in the workers
JOIN_TIMEOUT = 60  # s: how long a worker waits for the others to join
COLLECTIVE_TIMEOUT = 30  # s: a collective that waits longer fails instead of hanging
_STARTED = set()  # pids of every worker process this module started (see leftover_processes)


class WorkerError(CourseError):
    """A worker raised, exited or did not answer in time. ``outcomes`` maps each rank to what
    happened to it (a short sentence); ``logs`` maps ranks to the end of their output."""

    def __init__(self, message, outcomes=None, logs=None):
        super().__init__(message)
        self.outcomes, self.logs = dict(outcomes or {}), dict(logs or {})

    @property
    def kinds(self):
        """``{rank: "finished" | "raised" | "exited with code N" | "stopped"}``: what happened
        to each worker, without the error's text (which can change from run to run)."""
        kinds = {}
        for rank, text in self.outcomes.items():
            if text.startswith("raised"):
                kinds[rank] = "raised"
            elif text.startswith("exited"):
                kinds[rank] = text
            elif text == "finished":
                kinds[rank] = "finished"
            else:
                kinds[rank] = "stopped"
        return kinds


class WorkerTimeout(WorkerError):
    """A worker did not become ready, or did not finish an experiment, within its time limit."""


# ---------------------------------------------------------------- ports and processes


def free_port(host=HOST):
    """Return a TCP port that nothing uses on ``host`` right now (the operating system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _socket_inodes(pid):
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _listening(inodes=None):
    """Yield (address, port, inode) of every listening TCP socket (Linux /proc/net/tcp*)."""
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            with open(table) as listing:
                lines = listing.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # 0A = LISTEN
                continue
            if inodes is not None and fields[9] not in inodes:
                continue
            hex_address, hex_port = fields[1].split(":")
            yield _address(hex_address, family), int(hex_port, 16), fields[9]


def _address(hex_address, family):
    raw = bytes.fromhex(hex_address)
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # 4 little-endian words
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text.removeprefix("::ffff:") if text.startswith("::ffff:") else f"[{text}]"


def listening_sockets(pid):
    """Return the sorted ``"address:port"`` strings a process listens on (Linux), else None.

    ``127.0.0.1:PORT`` accepts connections from this machine only; ``0.0.0.0:PORT`` and
    ``[::]:PORT`` accept them on every network interface.
    """
    if not os.path.isdir(f"/proc/{pid}/fd"):
        return None
    try:
        inodes = _socket_inodes(pid)
    except OSError:
        return None
    return sorted(f"{address}:{port}" for address, port, _ in _listening(inodes))


def only_loopback(pid):
    """Return True when every socket process ``pid`` listens on is bound to 127.0.0.1 (or
    ::1), False when one accepts connections on other interfaces, None when unknown."""
    sockets = listening_sockets(pid)
    if not sockets:
        return None
    return all(s.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]") for s in sockets)


def listening_summary(pid):
    """Return where process ``pid`` listens, in words: e.g. ``"2 port(s), all on 127.0.0.1
    (this machine only)"`` or ``"1 port(s), on every network interface"``."""
    sockets = listening_sockets(pid)
    if sockets is None:
        return "unknown (this system has no /proc to read it from)"
    if not sockets:
        return "no port"
    addresses = sorted({s.rsplit(":", 1)[0] for s in sockets})
    if only_loopback(pid):
        where = "all on 127.0.0.1 (this machine only)"
    elif any(a in ("0.0.0.0", "[::]") for a in addresses):
        where = "on every network interface"
    else:
        where = "on " + ", ".join(addresses)
    return f"{len(sockets)} port(s), {where}"


def port_is_free(port):
    """Return True when nothing listens on TCP ``port`` (any address) on this machine."""
    if os.path.exists("/proc/net/tcp"):
        return all(p != port for _, p, _ in _listening())
    with socket.socket() as probe:  # elsewhere: try to take it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def alive(pid):
    """Return True when process ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_processes():
    """Return the pids of worker processes this module started that are still running ([] is
    the expected answer once every pool is closed)."""
    return sorted(pid for pid in _STARTED if alive(pid))


def _watch_parent(parent_pid, interval=0.5):
    """In a worker: exit as soon as the process that started it is gone (no orphans)."""

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(interval)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


# ---------------------------------------------------------------- what runs in the workers


@dataclass
class Source:
    """A function sent to the workers as source code, for a function written in a notebook
    (worker processes cannot import a notebook). ``Source.of(fn)`` reads the source;
    the workers run it with ``torch``/``tf``, ``np`` and ``keras`` already imported."""

    name: str
    code: str

    @classmethod
    def of(cls, fn):
        """Return the :class:`Source` of a function (its code, as ``inspect.getsource`` reads it)."""
        return cls(fn.__name__, textwrap.dedent(inspect.getsource(fn)))


def _ref(fn):
    """Return a picklable reference to a worker function: by import path, or its source."""
    if isinstance(fn, Source):
        return ("source", fn.name, fn.code)
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in name:
        raise CourseError(
            f"{name or fn!r} is defined in this notebook or inside a function, so worker "
            "processes cannot import it: move it to a module, or send "
            "cu.distributed.Source.of(fn) to run its source code in the workers."
        )
    return ("import", module, name)


def _resolve(ref, namespace):
    if ref[0] == "source":
        scope = dict(namespace)
        exec(compile(ref[2], f"<{ref[1]}>", "exec"), scope)  # the notebook's own code
        return scope[ref[1]]
    import importlib

    target = importlib.import_module(ref[1])
    for part in ref[2].split("."):
        target = getattr(target, part)
    return target


_ADDRESS = re.compile(r"\[?(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)\]?:\d{2,5}")
_NOISE = re.compile(
    r"^\s*(Graph execution error:|Detected at node|in user code:|File |\[\[|Traceback|$)"
)
_SOURCE_TAG = re.compile(r"^\[[^\]]*\.(?:cc|cpp|h|py):\d+\]\s*")  # e.g. "[.../pair.cc:553] "
_INNER = re.compile(r"^\w+(?:Error|Exception): ")


def short_error(err, limit=120):
    """Return ``"ErrorType: first meaningful line"`` for an exception, without what changes
    from run to run (network addresses and ports) or says nothing to a reader (TensorFlow's
    graph-node lines, C++ source locations); a line longer than ``limit`` characters keeps
    only its first sentence."""
    lines = [line.strip() for line in str(err).splitlines() if not _NOISE.match(line)]
    inner = [line for line in lines if _INNER.match(line)]  # TF: "... ValueError: why" at the end
    text = inner[-1].split(": ", 1)[1] if inner else (lines[0] if lines else "")
    if not inner and len(lines) > 1 and text.endswith(("{", "[", "(")):
        text = f"{text} ... {lines[-1]}"  # a value printed over many lines: keep its two ends
    text = _ADDRESS.sub("<address>", _SOURCE_TAG.sub("", text))
    if len(text) > limit:  # keep the first sentence (a period and a space, not an ellipsis)
        end = re.search(r"(?<!\.)\.\s", text)
        if end and end.start() < limit:
            text = text[: end.start()]
    text = text.rstrip(".")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _redirect_output(path):
    """In a worker: send everything written to stdout/stderr (fd 1 and 2) to ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _tail(path, lines=15):
    try:
        with open(path, errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except OSError:
        return ""


# ---------------------------------------------------------------- the shared model


def torch_mlp(weights):
    """Return the course's MLP (``Linear``, ReLU, ``Linear``) in PyTorch, loaded with ``weights``
    (a list of :class:`course_utils.training.Layer` in the Keras layout)."""
    import torch

    from .training import load_torch

    (n_in, hidden), n_out = weights[0].kernel.shape, weights[1].kernel.shape[1]
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out)
    )
    return load_torch(model, weights)


def keras_mlp(weights):
    """Return the course's MLP (``Dense`` with ReLU, ``Dense``) in Keras, loaded with ``weights``.
    Build it inside ``strategy.scope()`` to make its variables distributed."""
    import keras

    from .training import load_keras

    (n_in, hidden), n_out = weights[0].kernel.shape, weights[1].kernel.shape[1]
    model = keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(n_out),
        ]
    )
    return load_keras(model, weights)


def mlp_weights(hidden=64, seed=0, n_in=64, n_out=10):
    """Return the shared NumPy initial weights of an ``n_in``-``hidden``-``n_out`` MLP
    (:func:`course_utils.training.init_weights`: Glorot uniform, zero biases, float32)."""
    from .training import init_weights

    return init_weights([("dense", n_in, hidden), ("dense", hidden, n_out)], seed=seed)


def _torch_weights(model, like):
    from .training import torch_weights

    return torch_weights(model, like)


def _keras_weights(model, like):
    from .training import keras_weights

    return keras_weights(model, like)


# ---------------------------------------------------------------- PyTorch: the training pair


def torch_train(X, y, weights, steps, batch_size, lr):
    """Train the MLP for ``steps`` SGD steps of ``batch_size`` examples, in one process.

    Returns ``(losses, weights)``: the loss of every step and the final weights (Keras layout).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = torch_mlp(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = DataLoader(dataset, batch_size=batch_size)
    losses = []
    for _, (Xb, yb) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss = loss_fn(model(Xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, _torch_weights(model, weights)


def torch_train_ddp(rank, world_size, X, y, weights, steps, batch_size, lr):
    """The same training as :func:`torch_train`, as worker ``rank`` of ``world_size``:
    ``batch_size`` examples per worker and step, gradients averaged by DDP.

    Returns ``(losses, weights)``: this worker's loss of every step, and the final weights.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    model = DDP(torch_mlp(weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    losses = []
    for _, (Xb, yb) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss = loss_fn(model(Xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, _torch_weights(model.module, weights)


# ---------------------------------------------------------------- PyTorch: the workers


def init_worker(rank, world_size, port, timeout=JOIN_TIMEOUT, backend="gloo"):
    """Join the process group of ``world_size`` workers as ``rank``, over 127.0.0.1 only.

    Rank 0 hosts the rendezvous, a ``TCPStore`` listening on 127.0.0.1:``port``; the others
    connect to it; then the gloo backend connects every pair of workers. The one-line form,
    ``init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", ...)``, does the same,
    but its store listens on every network interface of the machine.
    """
    import datetime

    import torch.distributed as dist

    wait = datetime.timedelta(seconds=timeout)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's connections: loopback only
    listen_fd = None
    if rank == 0:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, port))
        listener.listen()
        listen_fd = listener.detach()  # the store owns the socket from here on
    store = dist.TCPStore(
        HOST, port, world_size, is_master=rank == 0, timeout=wait, master_listen_fd=listen_fd
    )
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=wait)


def _torch_worker(rank, world_size, port, settings, inboxes, outbox):
    """Body of one PyTorch worker process: join the group, then run what the pool sends."""
    _watch_parent(settings["parent"])
    _redirect_output(settings["logs"][rank])
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(settings["threads"])
        torch.manual_seed(settings["seed"])
        init_worker(rank, world_size, port, settings["timeout"], settings["backend"])
        outbox.put((rank, "ready", time.time() - settings["launched"]))
    except BaseException as err:  # reported to the pool, which decides
        outbox.put((rank, "error", short_error(err), traceback.format_exc()))
        return
    namespace = {"torch": torch, "dist": dist, "nn": torch.nn, "np": np}
    try:
        while True:
            message = inboxes[rank].get()
            if message is None:
                break
            ref, kwargs = message
            try:
                result = _resolve(ref, namespace)(rank, world_size, **kwargs)
                outbox.put((rank, "result", result))
            except BaseException as err:  # reported; the worker goes on
                outbox.put((rank, "error", short_error(err), traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        outbox.close()
        outbox.join_thread()  # every message sent
        sys.stdout.flush()
        os._exit(0)  # skip the interpreter's slow teardown of PyTorch: nothing is left to do


class _Pool:
    """What the two pools share: per-rank bookkeeping, waiting with deadlines, stopping."""

    kind = "worker"

    def __init__(self, world_size, *, started, start_timeout, run_timeout):
        if world_size < 1:
            raise ValueError("world_size must be at least 1")
        self.world_size = world_size
        self.started = world_size if started is None else started
        if not 1 <= self.started <= world_size:
            raise ValueError("started must be between 1 and world_size")
        self.start_timeout, self.run_timeout = start_timeout, run_timeout
        self.startup_s = {}  # rank -> seconds from launch to ready
        self.tracebacks = {}  # rank -> the traceback of the last error it reported
        self.failure = None  # the last WorkerError raised by this pool
        self.ports = []
        self._closed = False
        self._broken = None  # why the pool cannot run experiments any more
        self._stopping = {"polite": True}  # read by the stop function at close

    # -- to be provided by the subclasses
    def _send(self, rank, message):
        raise NotImplementedError

    def _receive(self, timeout):
        """Return (rank, kind, *payload) or None when nothing arrived within ``timeout``."""
        raise NotImplementedError

    def _exitcode(self, rank):
        raise NotImplementedError

    def _log(self, rank):
        raise NotImplementedError

    def _stop(self):
        raise NotImplementedError

    @property
    def pids(self):
        raise NotImplementedError

    # -- shared behaviour
    def __enter__(self):
        return self.start() if not self.pids else self

    def __exit__(self, *exc):
        self.close()

    def _name(self, rank):
        return f"{self.kind} {rank}"

    def _fail(self, cls, message, outcomes, keep=False):
        logs = {r: self.tracebacks.get(r, "") + self._log(r) for r in range(self.started)}
        self.failure = cls(message, outcomes, logs)
        if not keep:
            self._broken = message
            self._stopping["polite"] = False  # the workers may be stuck: no point in asking
            self.close()
        raise self.failure

    def _collect(self, ranks, wanted, timeout, what, keep_on_error=False):
        """Wait until every rank in ``ranks`` sent ``wanted`` (or failed); return {rank: payload}.

        A rank that raised, exited or stayed silent past ``timeout`` seconds stops the pool and
        raises :class:`WorkerError` / :class:`WorkerTimeout` naming every rank's outcome. Once
        one rank failed, the others get ``fault_grace`` seconds to fail or finish on their own
        (they are usually blocked in a collective with it) before they are stopped too.
        """
        ranks = sorted(set(ranks))
        pending, got, problems = set(ranks), {}, {}
        deadline = time.monotonic() + timeout
        first_failure = None
        while pending:
            message = self._receive(timeout=0.05)
            if message is not None:
                self._take(message, wanted, got, problems, pending)
                continue
            for rank in sorted(pending):
                code = self._exitcode(rank)
                if code is not None:
                    self._drain(wanted, got, problems, pending, wait=0.3)
                    if rank in pending:
                        problems[rank] = f"exited with code {code}"
                        pending.discard(rank)
            now = time.monotonic()
            if problems and first_failure is None:
                first_failure = now
            if pending and first_failure is not None and now - first_failure > self.fault_grace:
                for rank in sorted(pending):
                    problems[rank] = "was still waiting when another one failed (stopped)"
                pending.clear()
            if pending and now > deadline:
                for rank in sorted(pending):
                    problems[rank] = f"did not finish {what} within {timeout:g} s (stopped)"
                outcomes = {r: problems.get(r, "finished") for r in ranks}
                cls = WorkerError if len(problems) > len(pending) else WorkerTimeout
                self._fail(cls, self._summary(what, outcomes), outcomes)
        if problems:
            outcomes = {r: problems.get(r, "finished") for r in ranks}
            # a Python exception raised by every worker leaves the group usable; anything else not
            keep = keep_on_error and all(text.startswith("raised") for text in outcomes.values())
            self._fail(WorkerError, self._summary(what, outcomes), outcomes, keep=keep)
        return got

    def _take(self, message, wanted, got, problems, pending):
        rank, kind, *payload = message
        if kind == wanted and rank in pending:
            got[rank] = payload[0]
            pending.discard(rank)
        elif kind == "error" and rank in pending:
            problems[rank] = f"raised {payload[0]}"
            self.tracebacks[rank] = payload[1]
            pending.discard(rank)
        else:
            self._note(rank, kind, payload)

    def _drain(self, wanted, got, problems, pending, wait):
        """Read the messages still on their way (e.g. from a worker that just exited)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self._receive(timeout=0.05)
            if message is not None:
                self._take(message, wanted, got, problems, pending)

    def _note(self, rank, kind, payload):
        """Handle a message that is not the one being waited for (subclasses add kinds)."""

    def _summary(self, what, outcomes):
        parts = [f"{self._name(rank)} {text}" for rank, text in outcomes.items()]
        return f"{what} failed: " + "; ".join(parts) + "."

    def run(self, fn, *, timeout=None, keep_on_error=False, **kwargs):
        """Run ``fn`` in every worker with the same keyword arguments; return the results as a
        list indexed by rank. Raises :class:`WorkerError` when a worker raises or exits and
        :class:`WorkerTimeout` when one takes longer than ``timeout`` s; either stops the pool,
        except with ``keep_on_error`` when every worker raised an ordinary exception."""
        calls = dict.fromkeys(range(self.started), (fn, kwargs))
        return self.run_each(calls, timeout=timeout, keep_on_error=keep_on_error)

    def run_each(self, calls, *, timeout=None, keep_on_error=False):
        """Run ``calls[rank] = (fn, kwargs)`` in each listed worker at once; return the results
        as a list indexed by rank (None for ranks not listed)."""
        self._check_usable()
        name = next(iter(calls.values()))[0]
        what = getattr(name, "__name__", getattr(name, "name", "the experiment"))
        gone = {r: self._exitcode(r) for r in range(self.started) if self._exitcode(r) is not None}
        if gone:  # e.g. killed from outside since the last call: don't write to a dead pipe
            outcomes = {r: f"exited with code {code} before the call" for r, code in gone.items()}
            self._fail(WorkerError, self._summary(what, outcomes), outcomes)
        for rank, (fn, kwargs) in calls.items():
            if not 0 <= rank < self.started:
                raise ValueError(f"no {self.kind} {rank} in this pool")
            self._send(rank, (_ref(fn), kwargs))
        with self._stop_if_interrupted():
            got = self._collect(
                list(calls), "result", timeout or self.run_timeout, what, keep_on_error
            )
        return [got.get(rank) for rank in range(self.started)]

    @contextlib.contextmanager
    def _stop_if_interrupted(self):
        """Stop the pool when waiting is interrupted (Ctrl-C, a kernel interrupt): the workers
        are in the middle of something nobody will collect."""
        try:
            yield
        except WorkerError:
            raise
        except BaseException:
            self._broken = "interrupted while waiting for the workers"
            self._stopping["polite"] = False
            self.close()
            raise

    def _check_usable(self):
        if self._closed:
            raise CourseError(
                "these workers were stopped"
                + (f" ({self._broken})" if self._broken else "")
                + ": start a new pool."
            )
        if not self.pids:
            raise CourseError("the workers are not started: call start() or use a `with` block")

    def __repr__(self):
        state = "stopped" if self._closed else ("running" if self.pids else "not started")
        return f"<{type(self).__name__}: {self.started} of {self.world_size} workers, {state}>"

    @property
    def running(self):
        """True while the pool's processes are up (started and not closed)."""
        return bool(self.pids) and not self._closed

    def close(self):
        """Stop every worker (politely, then by force) and release their ports; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop()


def _stop_process(process_like, polite, grace=5.0):
    """Stop one process: ``polite()`` first, then SIGTERM, then SIGKILL; reap it."""
    if process_like.poll() is None:
        try:
            polite()
        except Exception:  # e.g. a broken pipe: go on to the signals
            pass
    for signal_fn, wait in ((None, grace), (process_like.terminate, 2.0), (process_like.kill, 5.0)):
        if signal_fn is not None and process_like.poll() is None:
            try:
                signal_fn()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while process_like.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if process_like.poll() is not None:
            return


class _MPProcess:
    """Adapter giving a multiprocessing.Process the poll/terminate/kill interface of Popen."""

    def __init__(self, process):
        self.process = process

    def poll(self):
        return self.process.exitcode

    def terminate(self):
        self.process.terminate()

    def kill(self):
        self.process.kill()


class TorchWorkers(_Pool):
    """``world_size`` PyTorch worker processes in one gloo process group on 127.0.0.1::

        with TorchWorkers(2) as workers:
            results = workers.run(torch_train_ddp, X=X, y=y, ...)  # [rank 0's, rank 1's]

    The workers are started with ``torch.multiprocessing`` (spawn) and join the group with
    :func:`init_worker`; a worker function is called as ``fn(rank, world_size, **kwargs)``.
    ``threads``: intra-op threads per worker. ``started < world_size`` starts only the first
    ranks: the others never join, and rank 0 gives up after ``timeout`` seconds, which is also
    how long a collective may wait (the process group's timeout).
    """

    kind = "rank"

    def __init__(
        self,
        world_size=2,
        *,
        threads=1,
        started=None,
        seed=0,
        timeout=JOIN_TIMEOUT,
        backend="gloo",
        start_timeout=START_TIMEOUT,
        run_timeout=RUN_TIMEOUT,
        fault_grace=10.0,
    ):
        super().__init__(
            world_size, started=started, start_timeout=start_timeout, run_timeout=run_timeout
        )
        self.threads, self.seed, self.timeout = threads, seed, timeout
        self.backend, self.fault_grace = backend, fault_grace
        self._context = None
        self._folder = None
        self._finalizer = None

    @property
    def pids(self):
        return [p.pid for p in self._context.processes] if self._context else []

    def start(self):
        """Start the workers and wait until every one has joined the group; return self.

        Raises :class:`WorkerError` (a rank failed to join, e.g. a missing peer timed out)
        or :class:`WorkerTimeout`; either way every started process is stopped first.
        """
        import torch.multiprocessing as mp

        if self.pids or self._closed:
            raise CourseError("a pool starts once: create a new one")
        port = free_port()
        self.ports = [port]
        self._folder = tempfile.mkdtemp(prefix="course-torch-workers-")
        ctx = mp.get_context("spawn")
        self._inboxes = [ctx.SimpleQueue() for _ in range(self.started)]
        self._outbox = ctx.Queue()
        settings = {
            "parent": os.getpid(),
            "launched": time.time(),
            "threads": self.threads,
            "seed": self.seed,
            "timeout": self.timeout,
            "backend": self.backend,
            "logs": [os.path.join(self._folder, f"rank{r}.log") for r in range(self.started)],
        }
        # start_processes(fn, args, nprocs) calls fn(i, *args) in process i = 0 .. nprocs - 1
        self._context = mp.start_processes(
            _torch_worker,
            args=(self.world_size, port, settings, self._inboxes, self._outbox),
            nprocs=self.started,
            join=False,
            daemon=True,
            start_method="spawn",
        )
        _STARTED.update(self.pids)
        self._finalizer = weakref.finalize(
            self,
            _stop_torch,
            self._context,
            self._inboxes,
            self._outbox,
            self._folder,
            self._stopping,
        )
        with self._stop_if_interrupted():
            self.startup_s = self._collect(
                range(self.started), "ready", self.start_timeout, "starting the workers"
            )
        return self

    def _send(self, rank, message):
        self._inboxes[rank].put(message)

    def _receive(self, timeout):
        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def _exitcode(self, rank):
        return self._context.processes[rank].exitcode

    def _log(self, rank):
        return _tail(os.path.join(self._folder, f"rank{rank}.log")) if self._folder else ""

    def _stop(self):
        if self._finalizer is not None:
            self._finalizer()


def _stop_torch(context, inboxes, outbox, folder, stopping):
    """Stop a TorchWorkers pool's processes (also runs at garbage collection and exit):
    ask them to finish (unless ``stopping["polite"]`` is False), then terminate, then kill."""
    processes = [_MPProcess(p) for p in context.processes]
    for process, inbox in zip(processes, inboxes, strict=True):
        if stopping["polite"] and process.poll() is None:
            try:
                inbox.put(None)
            except Exception:  # a closed queue: the signals below stop the worker
                pass
    deadline = time.monotonic() + (5.0 if stopping["polite"] else 0.0)
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        try:  # keep the channel flowing so no worker blocks on a full pipe while exiting
            outbox.get(timeout=0.02)
        except (queue.Empty, OSError, EOFError, ValueError):
            pass
    for process in processes:
        _stop_process(process, polite=lambda: None, grace=0.0)
        process.process.join(timeout=1)
    outbox.cancel_join_thread()
    outbox.close()
    for inbox in inboxes:
        inbox.close()
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- PyTorch: experiments


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


def run_torch(fn, world_size=2, *, timeout=RUN_TIMEOUT, **kwargs):
    """Start ``world_size`` PyTorch workers, run ``fn`` once in each, stop them; return the
    results by rank (a one-off :class:`TorchWorkers`)."""
    with TorchWorkers(world_size) as workers:
        return workers.run(fn, timeout=timeout, **kwargs)


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

    from .training import Layer, dense_from_linear

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


def torch_cuda_allreduce(rank, world_size):
    """On a GPU machine, as one process per GPU with the NCCL backend: all-reduce a tensor on
    this rank's GPU; return its value (``world_size * (world_size + 1) / 2`` everywhere)."""
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)  # one process per GPU: rank r uses GPU r
    tensor = torch.full((4,), float(rank + 1), device=f"cuda:{rank}")
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


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


# ---------------------------------------------------------------- TensorFlow: the training pair


def tf_train(X, y, weights, steps, batch_size, lr):
    """Train the MLP for ``steps`` SGD steps of ``batch_size`` examples, in one process.

    Returns ``(losses, weights)``: the loss of every step and the final weights.
    """
    import keras
    import tensorflow as tf

    model = keras_mlp(weights)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(batch_size)

    @tf.function
    def train_step(Xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(Xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    losses = [float(train_step(Xb, yb)) for Xb, yb in itertools.islice(dataset, steps)]
    return losses, _keras_weights(model, weights)


def tf_train_distributed(strategy, X, y, weights, steps, batch_size, lr):
    """The same training as :func:`tf_train`, under ``strategy``: ``batch_size`` examples per
    replica and step; the optimizer sums the replicas' gradients of a loss scaled by the
    global batch, which averages them.

    Returns ``(losses, weights)``: the global loss of every step, and the final weights.
    """
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = keras_mlp(weights)
        optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    global_batch = batch_size * strategy.num_replicas_in_sync

    def dataset_fn(ctx):
        dataset = tf.data.Dataset.from_tensor_slices((X, y))
        return dataset.shard(ctx.num_input_pipelines, ctx.input_pipeline_id).batch(batch_size)

    dataset = strategy.distribute_datasets_from_function(dataset_fn)

    @tf.function
    def train_step(Xb, yb):
        def replica_step(Xb, yb):
            with tf.GradientTape() as tape:
                per_example = loss_fn(yb, model(Xb, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        per_replica = strategy.run(replica_step, args=(Xb, yb))
        return strategy.reduce("SUM", per_replica, axis=None)

    losses = [float(train_step(Xb, yb)) for Xb, yb in itertools.islice(dataset, steps)]
    return losses, _keras_weights(model, weights)


def keras_fit_distributed(strategy, X, y, weights, steps, batch_size, lr):
    """Train the MLP with Keras ``fit`` under ``strategy``, ``batch_size`` examples per replica
    and step: Keras splits each global batch between the replicas itself. Returns
    ``(losses, weights)`` (``fit`` reports the running mean of the loss over the epoch)."""
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = keras_mlp(weights)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    global_batch = batch_size * strategy.num_replicas_in_sync
    dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(global_batch).take(steps)
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"], _keras_weights(model, weights)


def logical_cpus(n=2):
    """Split this process's CPU into ``n`` logical TensorFlow devices; return the CPU device
    names. Call it before TensorFlow runs anything: once its runtime has started, the device
    list is fixed, and the devices already there are returned."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:  # the runtime is initialised already: keep what is there
        pass
    return [device.name for device in tf.config.list_logical_devices("CPU")]


# ---------------------------------------------------------------- TensorFlow: the workers


def tf_config(addresses, index):
    """Return the ``TF_CONFIG`` of worker ``index`` in a cluster of workers at ``addresses``."""
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def make_strategy(collective_timeout=COLLECTIVE_TIMEOUT):
    """Return this worker's ``MultiWorkerMirroredStrategy``; it reads the cluster and this
    worker's place in it from the ``TF_CONFIG`` environment variable."""
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,  # gRPC
        timeout_seconds=collective_timeout,  # a collective waiting longer fails, not hangs
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


_PREFIX = "@course-worker "


def _encode(obj):
    return base64.b64encode(pickle.dumps(obj)).decode("ascii")


def _decode(text):
    return pickle.loads(base64.b64decode(text))  # only ever our own pipe, to our own process


def serve(load, make_context, before_call=None):
    """Run the worker side of :class:`TFWorkers`' protocol in this process, then exit.

    ``load(settings)`` imports the framework and returns the names worker source code may use;
    ``make_context(settings)`` returns the object every worker function receives first (the
    strategy); ``before_call(context, settings)`` runs before every call. Messages to the pool
    go to the original stdout as prefixed lines; anything else printed goes to stderr, which
    the pool captures. Commands arrive on stdin, one per line; end of input ends the worker.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    settings = json.loads(os.environ["COURSE_TF_WORKER"])
    rank = settings["rank"]
    _watch_parent(settings["parent"])

    def send(kind, *payload):
        protocol.write(_PREFIX + _encode((rank, kind, *payload)) + "\n")
        protocol.flush()

    try:
        namespace = load(settings)
        send("imported", time.time() - settings["launched"])
        if settings["hold"]:
            sys.stdin.readline()  # the pool says when to go on ("release")
        context = make_context(settings)
        send("ready", time.time() - settings["launched"])
    except BaseException as err:  # reported to the pool, which decides
        send("error", short_error(err), traceback.format_exc())
        protocol.flush()
        os._exit(1)
    for line in sys.stdin:
        message = _decode(line.strip())
        if message is None:
            break
        ref, kwargs = message
        try:
            if before_call is not None:
                before_call(context, settings)
            send("result", _resolve(ref, namespace)(context, **kwargs))
        except BaseException as err:  # reported; the worker goes on
            send("error", short_error(err), traceback.format_exc())
    protocol.flush()
    os._exit(0)  # skip the framework's slow teardown (TensorFlow's gRPC server has no clean one)


def _tf_load(settings):
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(settings["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(settings["threads"])
    return {"tf": tf, "keras": keras, "np": np}


def _tf_context(settings):
    import tensorflow as tf

    strategy = make_strategy(settings["collective_timeout"])
    tf.random.set_seed(settings["seed"])
    return strategy


def _tf_before_call(strategy, settings):
    _tf_barrier(strategy, timeout=settings["start_timeout"])  # start every call together


class TFWorkers(_Pool):
    """``world_size`` TensorFlow worker processes forming one ``MultiWorkerMirroredStrategy``
    cluster over gRPC on 127.0.0.1::

        with TFWorkers(2) as workers:
            results = workers.run(tf_train_distributed, X=X, y=y, ...)  # [worker 0's, 1's]

    Each worker is ``python -m course_utils.distributed tf-worker`` with its own ``TF_CONFIG``
    and the course's quiet logging environment; its output is captured, never shown. A worker
    function is called as ``fn(strategy, **kwargs)``. ``hold=[1]`` keeps worker 1 from joining
    until :meth:`release`; ``started < world_size`` never starts the last workers at all.
    """

    kind = "worker"
    #: the worker program: it must speak :func:`serve`'s protocol
    command = (sys.executable, "-m", "course_utils.distributed", "tf-worker")

    def __init__(
        self,
        world_size=2,
        *,
        threads=1,
        started=None,
        hold=(),
        seed=0,
        collective_timeout=COLLECTIVE_TIMEOUT,
        start_timeout=START_TIMEOUT,
        run_timeout=RUN_TIMEOUT,
        fault_grace=None,
    ):
        super().__init__(
            world_size, started=started, start_timeout=start_timeout, run_timeout=run_timeout
        )
        self.threads, self.seed, self.collective_timeout = threads, seed, collective_timeout
        self.hold = sorted(set(hold))
        # after one worker fails, the others fail on their own within the collective timeout
        self.fault_grace = collective_timeout + 10.0 if fault_grace is None else fault_grace
        self._procs = []
        self._messages = queue.Queue()
        self._stderr = {}
        self.imported_s = {}
        self._finalizer = None

    @property
    def pids(self):
        return [p.pid for p in self._procs]

    @property
    def addresses(self):
        """The workers' addresses in ``TF_CONFIG`` (``127.0.0.1:PORT``)."""
        return [f"{HOST}:{port}" for port in self.ports]

    def start(self, wait=True):
        """Start the worker processes; with ``wait``, wait until they are ready (as
        :meth:`wait_ready`). Returns self."""
        from .quiet import ENV

        if self._procs or self._closed:
            raise CourseError("a pool starts once: create a new one")
        self.ports = [free_port() for _ in range(self.world_size)]
        launched = time.time()
        for rank in range(self.started):
            settings = {
                "rank": rank,
                "parent": os.getpid(),
                "launched": launched,
                "threads": self.threads,
                "seed": self.seed,
                "hold": rank in self.hold,
                "collective_timeout": self.collective_timeout,
                "start_timeout": self.start_timeout,
            }
            env = {
                **os.environ,
                **ENV,
                "TF_CONFIG": json.dumps(tf_config(self.addresses, rank)),
                "COURSE_TF_WORKER": json.dumps(settings),
                "PYTHONUNBUFFERED": "1",
            }
            proc = subprocess.Popen(
                list(self.command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                cwd=os.getcwd(),
            )
            self._procs.append(proc)
            _STARTED.add(proc.pid)
            self._stderr[rank] = deque(maxlen=400)
            threading.Thread(
                target=_read_messages, args=(proc.stdout, self._messages), daemon=True
            ).start()
            threading.Thread(
                target=_read_lines, args=(proc.stderr, self._stderr[rank]), daemon=True
            ).start()
        self._finalizer = weakref.finalize(self, _stop_tf, list(self._procs), self._stopping)
        if wait:
            self.wait_ready()
        return self

    def _note(self, rank, kind, payload):
        if kind == "imported":
            self.imported_s[rank] = payload[0]
        elif kind == "ready":
            self.startup_s[rank] = payload[0]

    def wait_ready(self, timeout=None):
        """Wait until every started worker that is not held back is ready; return self.

        Importing TensorFlow may take up to ``start_timeout`` s; after that each worker gets
        ``timeout`` more seconds (default: ``start_timeout``) to form the cluster. When that
        time is up, :class:`WorkerTimeout` says who is waiting for whom, and the workers keep
        running (:meth:`release` a held worker, or :meth:`close`).
        """
        self._check_usable()
        with self._stop_if_interrupted():
            return self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        ranks = [r for r in range(self.started) if r not in self.hold]
        self._collect_quietly(range(self.started), "imported", self.start_timeout, self.imported_s)
        waiting = [r for r in ranks if r not in self.startup_s]
        deadline = time.monotonic() + (timeout if timeout is not None else self.start_timeout)
        while waiting:
            message = self._receive(timeout=0.05)
            if message is not None:
                rank, kind, *payload = message
                if kind == "error":
                    outcomes = {rank: f"raised {payload[0]}"}
                    self._fail(
                        WorkerError, self._summary("starting the workers", outcomes), outcomes
                    )
                self._note(rank, kind, payload)
            for rank in list(waiting):
                code = self._exitcode(rank)
                if rank in self.startup_s:
                    waiting.remove(rank)
                elif code is not None:
                    outcomes = {rank: f"exited with code {code}"}
                    self._fail(
                        WorkerError, self._summary("starting the workers", outcomes), outcomes
                    )
            if waiting and time.monotonic() > deadline:
                absent = [r for r in range(self.world_size) if r in self.hold or r >= self.started]
                who = " and ".join(f"worker {r}" for r in absent) or "the other workers"
                limit = timeout if timeout is not None else self.start_timeout
                raise WorkerTimeout(
                    f"after {limit:g} s, "
                    + ", ".join(f"worker {r}" for r in waiting)
                    + f" still waits in MultiWorkerMirroredStrategy() for {who} to join. "
                    "TensorFlow itself sets no limit on this wait; the workers keep running "
                    "(release a held worker, or close() the pool).",
                    {r: "waiting for the cluster" for r in waiting},
                )
        return self

    def _collect_quietly(self, ranks, wanted, timeout, into):
        deadline = time.monotonic() + timeout
        pending = [r for r in ranks if r not in into]
        while pending:
            message = self._receive(timeout=0.05)
            if message is not None:
                rank, kind, *payload = message
                if kind == "error":
                    outcomes = {rank: f"raised {payload[0]}"}
                    self._fail(
                        WorkerError, self._summary("starting the workers", outcomes), outcomes
                    )
                self._note(rank, kind, payload)
            for rank in list(pending):
                if rank in into:
                    pending.remove(rank)
                elif self._exitcode(rank) is not None:
                    outcomes = {rank: f"exited with code {self._exitcode(rank)}"}
                    self._fail(
                        WorkerError, self._summary("starting the workers", outcomes), outcomes
                    )
            if pending and time.monotonic() > deadline:
                outcomes = {r: f"did not start within {timeout:g} s (stopped)" for r in pending}
                self._fail(WorkerTimeout, self._summary("starting the workers", outcomes), outcomes)

    def release(self, *ranks):
        """Let held-back workers join the cluster (all of them when no rank is given)."""
        for rank in ranks or list(self.hold):
            if rank in self.hold:
                self._procs[rank].stdin.write("release\n")
                self._procs[rank].stdin.flush()
                self.hold.remove(rank)
        return self

    def run_each(self, calls, *, timeout=None, keep_on_error=False):
        if sorted(calls) != list(range(self.started)):
            raise ValueError("every TensorFlow worker takes part in every call: give one per rank")
        if not self._closed and self._procs and (self.hold or len(self.startup_s) < self.started):
            self.wait_ready()
        return super().run_each(calls, timeout=timeout, keep_on_error=keep_on_error)

    def _send(self, rank, message):
        self._procs[rank].stdin.write(_encode(message) + "\n")
        self._procs[rank].stdin.flush()

    def _receive(self, timeout):
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def _exitcode(self, rank):
        return self._procs[rank].poll()

    def _log(self, rank):
        return "".join(list(self._stderr.get(rank, ()))[-15:])

    def _stop(self):
        if len(self.startup_s) < self.started:
            self._stopping["polite"] = False  # a worker still starting reads no commands
        if self._finalizer is not None:
            self._finalizer()


def _read_messages(stream, messages):
    for line in stream:
        if line.startswith(_PREFIX):
            messages.put(_decode(line[len(_PREFIX) :].strip()))


def _read_lines(stream, lines):
    for line in stream:
        lines.append(line)


def _stop_tf(procs, stopping):
    """Stop a TFWorkers pool's processes (also runs at garbage collection and exit): ask them
    to finish (unless ``stopping["polite"]`` is False), then terminate, then kill."""

    def polite(proc):
        def close_stdin():
            proc.stdin.write(_encode(None) + "\n")
            proc.stdin.flush()
            proc.stdin.close()

        return close_stdin

    for proc in procs:
        if stopping["polite"] and proc.poll() is None:
            try:
                polite(proc)()
            except (OSError, ValueError):
                pass
    for proc in procs:
        _stop_process(proc, polite=lambda: None, grace=5.0 if stopping["polite"] else 0.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


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
    from .quiet import ENV

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


# ---------------------------------------------------------------- TensorFlow: experiments


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


_BARRIERS = {}


def _tf_barrier(strategy, timeout=None):
    """Wait until every worker reaches this point (a one-number all-reduce); ``timeout`` in s
    overrides the strategy's collective timeout for this wait."""
    import tensorflow as tf

    key = (id(strategy), timeout)
    if key not in _BARRIERS:
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)

        @tf.function
        def barrier():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce("sum", tf.zeros([1]), options=options)

        _BARRIERS[key] = barrier
    strategy.run(_BARRIERS[key])


def tf_first_step(strategy, X, y, weights, batch_size, lr):
    """Build the model under the strategy and run one training step; return the seconds."""
    start = time.perf_counter()
    tf_train_distributed(strategy, X, y, weights, 1, batch_size, lr)
    return time.perf_counter() - start


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
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    global_batch = batch_size * strategy.num_replicas_in_sync

    def dataset_fn(ctx):
        dataset = tf.data.Dataset.from_tensor_slices((X, y))
        return dataset.shard(ctx.num_input_pipelines, ctx.input_pipeline_id).batch(batch_size)

    @tf.function
    def train_step(Xb, yb):
        def replica_step(Xb, yb):
            with tf.GradientTape() as tape:
                per_example = loss_fn(yb, model(Xb, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        strategy.run(replica_step, args=(Xb, yb))

    batches = strategy.distribute_datasets_from_function(dataset_fn)
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


# ---------------------------------------------------------------- reading the timings


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


# ---------------------------------------------------------------- how much code changes


def code_lines(fn):
    """Return the lines of a function's source without its docstring, comments and blank lines."""
    import ast

    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    body = tree.body[0].body
    skip = set()
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
    ):
        if isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = []
    for number, line in enumerate(source.splitlines(), 1):
        code = _strip_comment(line).rstrip()
        if number in skip or not code.strip():
            continue
        lines.append(code)
    return lines


def _strip_comment(line):
    """Drop a trailing ``# comment`` that is not inside a string."""
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return line
    for token in tokens:
        if token.type == tokenize.COMMENT:
            return line[: token.start[1]]
    return line


def changed_lines(before, after):
    """Count the lines of code that change from function ``before`` to function ``after``.

    Both are compared without docstrings, comments and blank lines (:func:`code_lines`), with
    ``difflib``; a line whose only change is its indentation (code moved into a block) counts
    as unchanged. Returns ``{"before": n, "after": n, "added": n, "removed": n, "changed": n,
    "listing": [...]}``: ``changed`` counts every line touched (an edited line once, an added
    or removed line once), and ``listing`` is ``after`` with ``+`` before its new lines and
    the lines of ``before`` it lost marked ``-``.
    """
    a, b = code_lines(before), code_lines(after)
    matcher = difflib.SequenceMatcher(
        a=[line.strip() for line in a], b=[line.strip() for line in b], autojunk=False
    )
    added = removed = changed = 0
    listing = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            listing += [f"  {line}" for line in b[j1:j2]]
            continue
        removed += i2 - i1
        added += j2 - j1
        changed += max(i2 - i1, j2 - j1)
        listing += [f"- {line}" for line in a[i1:i2]] + [f"+ {line}" for line in b[j1:j2]]
    return {
        "before": len(a),
        "after": len(b),
        "added": added,
        "removed": removed,
        "changed": changed,
        "listing": listing,
    }


TRAINING_PAIRS = {
    "pytorch": ("torch_train", "torch_train_ddp"),
    "tensorflow": ("tf_train", "tf_train_distributed"),
}


def distribution_cost(track):
    """Return :func:`changed_lines` for one track's training pair (``"pytorch"`` or
    ``"tensorflow"``): the single-process function and its distributed version."""
    single, distributed = TRAINING_PAIRS[track]
    module = sys.modules[__name__]
    return changed_lines(getattr(module, single), getattr(module, distributed))


if __name__ == "__main__":
    if sys.argv[1:] == ["tf-worker"]:
        serve(_tf_load, _tf_context, _tf_before_call)
    else:
        raise SystemExit("usage: python -m course_utils.distributed tf-worker")

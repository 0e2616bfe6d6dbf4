"""The PyTorch worker pool: processes started with torch.multiprocessing (spawn), joined in a
gloo process group on 127.0.0.1, that always stop."""

import contextlib
import os
import queue
import shutil
import socket
import sys
import tempfile
import time
import traceback
import weakref

import numpy as np

from ..errors import CourseError
from .processes import (
    _STARTED,
    HOST,
    JOIN_TIMEOUT,
    RUN_TIMEOUT,
    START_TIMEOUT,
    WorkerError,
    WorkerTimeout,
    _redirect_output,
    _ref,
    _resolve,
    _tail,
    _watch_parent,
    free_port,
    short_error,
)


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


def run_torch(fn, world_size=2, *, timeout=RUN_TIMEOUT, **kwargs):
    """Start ``world_size`` PyTorch workers, run ``fn`` once in each, stop them; return the
    results by rank (a one-off :class:`TorchWorkers`)."""
    with TorchWorkers(world_size) as workers:
        return workers.run(fn, timeout=timeout, **kwargs)

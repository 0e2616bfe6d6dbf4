"""The TensorFlow worker pool: one subprocess per worker with its own TF_CONFIG, running
MultiWorkerMirroredStrategy, that always stops."""

import base64
import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections import deque

import numpy as np

from ..errors import CourseError
from .processes import (
    _STARTED,
    COLLECTIVE_TIMEOUT,
    HOST,
    RUN_TIMEOUT,
    START_TIMEOUT,
    WorkerError,
    WorkerTimeout,
    _resolve,
    _watch_parent,
    free_port,
    short_error,
)
from .torch_pool import _Pool, _stop_process


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
        from ..quiet import ENV

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
            self._take_startup_message()
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

    def _take_startup_message(self):
        """Wait briefly for one worker message while the workers start: note it, or fail the
        start-up with the worker's error."""
        message = self._receive(timeout=0.05)
        if message is None:
            return
        rank, kind, *payload = message
        if kind == "error":
            outcomes = {rank: f"raised {payload[0]}"}
            self._fail(WorkerError, self._summary("starting the workers", outcomes), outcomes)
        self._note(rank, kind, payload)

    def _collect_quietly(self, ranks, wanted, timeout, into):
        deadline = time.monotonic() + timeout
        pending = [r for r in ranks if r not in into]
        while pending:
            self._take_startup_message()
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

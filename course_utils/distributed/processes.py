"""Processes and ports: constants, errors, free ports, what listens where, and how worker
functions travel to the workers (by import path, or as source)."""

import inspect
import os
import re
import socket
import sys
import textwrap
import threading
import time
from collections import deque
from dataclasses import dataclass

from ..errors import CourseError

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

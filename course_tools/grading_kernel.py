"""The grader's side inside a student's kernel: signed check results and guarded folders.

``course grade`` starts every submission's kernel with ``start()`` as its first statement,
before any cell runs. ``start()`` reads (and deletes) a setup file the grader wrote, then:

1. replaces ``course_utils.check`` with a wrapper around the checker as loaded at start-up: every
   result it returns is also written, signed with a per-run secret key (HMAC-SHA256), to a
   results file the grader reads afterwards. Outputs a notebook displays itself (a pasted or
   printed "passed") never reach that file; a checker replaced in ``checks.REGISTRY`` during the
   run is reported as an error instead of its result;
2. installs a Python audit hook (which cannot be removed) that refuses, with PermissionError,
   any file operation that would change the course's files, the grader's scratch folders or
   its output, and any access at all to the submissions folder (and, where the sandbox could
   not remove the network, Python's own internet sockets); each refusal, and every external
   command started, is written to the results file too, so the grader can say what happened.

This guards against mistakes and against the easy tricks. It is not a sandbox: code that goes
around Python (a shell command with an obfuscated path, ctypes) can still touch files, which the
grader detects afterwards by comparing checksums and undoes; and code that digs the key out of
this process's memory can forge a result. See the README's section on grading.
"""

import errno
import hashlib
import hmac
import json
import os
import sys
import threading

SETUP_ENV = "COURSE_GRADE_SETUP"
MAX_EVENTS = 25
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# audit event -> indexes of the arguments that are paths being changed
CHANGES = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.mkdir": (0,),
    "os.utime": (0,),
    "os.chflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.move": (0, 1),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.chown": (0,),
}
READS = {"os.listdir": 0, "os.scandir": 0, "glob.glob": 0, "os.chdir": 0}
COMMANDS = {"subprocess.Popen": 1, "os.system": 0, "os.posix_spawn": 1, "os.exec": 1}
NETWORK = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"}


def sign(key, body):
    """Return the hex HMAC-SHA256 of ``body`` (a str) under ``key`` (bytes)."""
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _path(value, dir_fd=None):
    """Return an absolute, resolved path for an audit argument, or None (a file descriptor)."""
    if isinstance(value, int) or value is None:
        return None
    try:
        value = os.fsdecode(os.fspath(value))
    except TypeError:
        return None
    if not os.path.isabs(value) and isinstance(dir_fd, int):
        try:
            value = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), value)
        except OSError:
            pass
    return os.path.realpath(value)


def _under(path, folders):
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def start():
    """Set up grading in this kernel; do nothing when the kernel was not started by the grader."""
    path = os.environ.pop(SETUP_ENV, None)
    if not path:
        return
    with open(path, encoding="utf-8") as handle:
        setup = json.load(handle)
    os.remove(path)
    key = bytes.fromhex(setup["key"])
    channel = open(setup["results"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    lock = threading.Lock()
    counts = {"events": 0}

    def emit(payload):
        body = json.dumps(payload, sort_keys=True)
        with lock:
            channel.write(json.dumps({"body": body, "sig": sign(key, body)}) + "\n")
            channel.flush()

    def event(kind, detail):
        if counts["events"] < MAX_EVENTS:
            counts["events"] += 1
            emit({"kind": kind, "detail": detail})

    _guard_files(setup, event)
    _sign_checks(emit)
    emit({"kind": "ready"})


def _sign_checks(emit):
    import course_utils
    from course_utils import checks

    original_check = checks.check
    originals = {k: ex.checker for k, ex in checks.load_checkers().items()}

    def check(exercise_id, answer):
        result = original_check(exercise_id, answer)
        entry = checks.REGISTRY.get(exercise_id)
        status, message, hint = result.status, result.message, result.hint
        if entry is None or entry.checker is not originals.get(exercise_id):
            status, message, hint = (
                "error",
                "the course's checker for this exercise was replaced during the run",
                None,
            )
        emit(
            {
                "kind": "check",
                "exercise": result.exercise,
                "status": status,
                "message": message,
                "hint": hint,
            }
        )
        return result

    check.__doc__ = original_check.__doc__
    checks.check = check
    course_utils.check = check


def _guard_files(setup, event):
    def real(key):
        return [os.path.realpath(p) for p in setup[key]]

    hidden, visible = real("hidden"), real("visible")  # no access at all, except in visible
    frozen, free = real("frozen"), real("free")  # read but never change, except in free
    # folders a command line may not name: the hidden ones that hold no visible one
    named = [h for h in hidden if not any(_under(v, [h]) for v in visible)]
    offline = bool(setup.get("no_network"))  # no network namespace: refuse it here instead
    busy = threading.local()
    logged = set()

    def is_hidden(path):
        return _under(path, hidden) and not _under(path, visible)

    def changes(path):
        return is_hidden(path) or (_under(path, frozen) and not _under(path, free))

    def deny(what, path):
        event("blocked", f"{what} {path}")
        raise PermissionError(errno.EACCES, f"not allowed while grading: {what}", path)

    def command(text):
        if text not in logged:
            logged.add(text)
            event("command", text)

    def hook(name, args):
        if getattr(busy, "on", False):
            return
        if offline and name in NETWORK:
            _check_network(name, args, deny)
            return
        if name != "open" and name not in CHANGES and name not in READS and name not in COMMANDS:
            return
        busy.on = True
        try:
            _check_event(name, args, named, is_hidden, changes, deny, command)
        finally:
            busy.on = False

    sys.addaudithook(hook)


def _check_network(name, args, deny):
    import socket

    sock = args[0] if args else None
    if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
        deny("the network:", f"{name}() to {args[1] if len(args) > 1 else '?'}")


def _check_event(name, args, named, is_hidden, changes, deny, command):
    if name == "open":
        target, mode, flags = (list(args) + [None, None])[:3]
        path = _path(target)
        if path is None:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
        )
        if is_hidden(path):
            deny("opening", path)
        if writing and changes(path):
            if "__pycache__" in path:  # Python caching bytecode: refuse quietly
                raise PermissionError(errno.EACCES, "read-only while grading", path)
            deny("writing", path)
    elif name in CHANGES:
        dir_fd = args[-1] if args and isinstance(args[-1], int) else None
        for index in CHANGES[name]:
            if index < len(args):
                path = _path(args[index], dir_fd)
                if path is not None and changes(path):
                    deny(f"{name}()", path)
    elif name in READS:
        path = _path(args[READS[name]]) if args else None
        if path is not None and is_hidden(path):
            deny(f"{name}()", path)
    else:
        text = args[COMMANDS[name]] if len(args) > COMMANDS[name] else args
        if isinstance(text, list | tuple):
            text = " ".join(os.fsdecode(c) if isinstance(c, bytes) else str(c) for c in text)
        text = (os.fsdecode(text) if isinstance(text, bytes) else str(text))[:200]
        if any(h in text for h in named):
            deny("running a command on", text)
        command(text)

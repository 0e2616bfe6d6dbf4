"""Where ``course grade`` runs a student's kernel: the strongest isolation the machine offers.

Three levels, strongest first, chosen when grading starts (``--isolation`` asks for one):

- ``container``: Docker or Podman, no network, read-only image, limits on processes and
  memory; needs a reachable daemon and ``COURSE_GRADE_IMAGE``, an image holding this course's
  environment at the same path as here.
- ``bwrap``: bubblewrap. The kernel sees the system and the Python environment read-only, its
  own run folder (a copy of the submission, a fresh HOME) and nothing else of the machine's
  files; its own network (none outside), its own process tree.
- ``process``: a separate process with a fresh HOME and working folder holding only a copy of
  the submission, no network where ``unshare`` can remove it, its own process tree there too,
  and the grader's audit hook (:mod:`course_tools.grading_kernel`) refusing Python-level access
  to the grader's HOME and the course. Shell commands can still read what the grader's user
  can read.

At every level: resource limits (CPU time, memory, processes, file size) set with
``resource.setrlimit`` just before the kernel starts, a pids cgroup where one can be made,
a limit on the output the grader keeps, a wall-time limit, and at the end every process the
run started is killed. Run as a script, this module is that launcher:
``python sandbox.py LIMITS_JSON -- COMMAND...``.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

LEVELS = ("container", "bwrap", "process")
MARKER = "COURSE_SANDBOX_RUN"
IMAGE_ENV = "COURSE_GRADE_IMAGE"
MiB, GiB = 2**20, 2**30


@dataclass
class Limits:
    """Per-notebook limits. ``memory``: bytes of data per process (RLIMIT_DATA: CUDA and XLA
    reserve address space they never use, so the address space itself is not limited)."""

    wall: float  # seconds for the whole run, kernel start included
    cpu: int  # CPU seconds of the kernel process
    memory: int
    processes: int  # processes and threads
    output: int  # bytes of output the grader keeps before it stops the notebook
    file_size: int  # bytes per file written

    @classmethod
    def for_timeout(cls, timeout, startup=60):
        cores = os.cpu_count() or 1
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            ram = 16 * GiB
        return cls(
            wall=timeout + startup + 30,
            cpu=int((timeout + startup) * cores) + 60,
            memory=max(2 * GiB, int(ram * 0.75)),
            processes=max(512, 16 * cores),
            output=16 * MiB,
            file_size=2 * GiB,
        )

    def text(self):
        return (
            f"wall {self.wall:g} s, CPU {self.cpu} s, memory {self.memory / GiB:.1f} GiB per "
            f"process, {self.processes} processes, output {self.output / MiB:g} MiB, "
            f"{self.file_size / MiB:g} MiB per file"
        )


def _works(cmd, timeout=15):
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _container_tool():
    """Return (tool, None) when a container can be used, else (None, why not)."""
    found = [t for t in ("podman", "docker") if shutil.which(t)]
    if not found:
        return None, "neither docker nor podman is installed"
    for tool in found:
        if _works([tool, "info"], timeout=10):
            if not os.environ.get(IMAGE_ENV):
                return None, (
                    f"{tool} works, but {IMAGE_ENV} names no image (one with this course's "
                    f"environment at {sys.prefix})"
                )
            return tool, None
    return None, f"{found[0]} is installed but cannot run containers (is its daemon running?)"


BWRAP_PROBE = ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc"]


def _bwrap():
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    if not _works(["bwrap", *BWRAP_PROBE, "--dev", "/dev", "true"]):
        return "bwrap is installed but cannot make namespaces here (user namespaces disabled?)"
    return None


UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]


def _unshare():
    return bool(shutil.which("unshare")) and _works([*UNSHARE, "true"])


def _pids_cgroup_base():
    """Return a folder where a pids cgroup can be made (cgroup v1 or v2), or None."""
    own = "/"
    try:
        for line in open("/proc/self/cgroup", encoding="utf-8").read().splitlines():
            parts = line.split(":", 2)
            if parts[1] == "pids" or (parts[0] == "0" and own == "/"):
                own = parts[2]
    except (OSError, IndexError):
        return None
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        folder = os.path.join(base, own.lstrip("/"))
        probe = os.path.join(folder, f"course-probe-{os.getpid()}")
        try:
            os.mkdir(probe)
        except OSError:
            continue
        ok = os.path.exists(os.path.join(probe, "pids.max"))
        os.rmdir(probe)
        if ok:
            return folder
    return None


def availability():
    """Return ``{level: None if usable else why not}`` and the details probed."""
    tool, why = _container_tool()
    return {"container": why, "bwrap": _bwrap(), "process": None}, {"tool": tool}


def choose(requested=None, limits=None, timeout=120):
    """Return the :class:`Sandbox` to grade with: ``requested`` or the strongest available."""
    from course_utils.errors import CourseError

    if requested is not None and requested not in LEVELS:
        raise CourseError(
            f"--isolation {requested!r} is not a level: choose one of {', '.join(LEVELS)}"
        )
    why, details = availability()
    if requested is not None and why[requested]:
        raise CourseError(f"--isolation {requested} is not available here: {why[requested]}")
    level = requested or next(lv for lv in LEVELS if not why[lv])
    return Sandbox(level, limits or Limits.for_timeout(timeout), why, details["tool"])


class Sandbox:
    """One isolation level with its limits; :meth:`box` makes the sandbox of one run."""

    def __init__(self, level, limits, why, tool=None):
        self.level, self.limits, self.why, self.tool = level, limits, why, tool
        self.unshare = level == "process" and _unshare()
        self.cgroup = _pids_cgroup_base() if level != "container" else None
        self.network = level != "process" or self.unshare  # network removed
        # RLIMIT_NPROC does not bind root; a pids cgroup (or the container's) does
        self.process_limit = level == "container" or bool(self.cgroup) or os.geteuid() != 0

    def header(self):
        """Lines that say how submissions are isolated (printed at the top of a grade run)."""
        what = {
            "container": f"a {self.tool} container: no network, its own files and processes",
            "bwrap": "bubblewrap: system and Python read-only, only its run folder visible "
            "and writable, no network, its own processes",
            "process": "a separate process with a fresh HOME and working folder"
            + (
                ", no network, its own process tree (unshare)"
                if self.unshare
                else " (the network is NOT removed: unshare is not permitted here)"
            ),
        }[self.level]
        lines = [f"Isolation: {self.level} -- {what}"]
        lines.append(
            f"  limits per notebook: {self.limits.text()}"
            + ("" if self.process_limit else " (the process limit does not bind root here)")
        )
        if self.level == "process":
            lines.append(
                "  WARNING: this is the weakest level: the notebooks' shell commands can read "
                "and change what your user can. For a stronger one install bubblewrap "
                "(apt-get install bubblewrap) or set up a container, then use --isolation "
                "bwrap or --isolation container."
            )
            for level in ("container", "bwrap"):
                lines.append(f"  {level}: {self.why[level] or 'available'}")
        return lines

    def box(self, run_dir, token):
        return Box(self, run_dir, token)


def _python_paths():
    """Folders the kernel's Python needs (read-only): the environment and its interpreter."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    prefixes = tuple(os.path.realpath(p) + os.sep for p in paths)
    for entry in sys.path:  # packages installed elsewhere (user site); not the current folder
        real = os.path.realpath(entry) if entry else ""
        if os.path.isdir(real) and (
            real.startswith(prefixes)
            or os.path.basename(real) in ("site-packages", "dist-packages")
        ):
            paths.add(real)
    real = sorted({os.path.realpath(p) for p in paths} | paths)
    system = ("/usr/", "/bin/", "/lib", "/sbin/", "/etc/")
    return [p for p in real if os.path.isdir(p) and not (p + "/").startswith(system)]


class Box:
    """The sandbox of one run: wraps the kernel command, and kills what it started."""

    def __init__(self, sandbox, run_dir, token):
        self.sandbox, self.run_dir, self.token = sandbox, str(run_dir), token
        self.pgid = None
        self.name = f"course-grade-{token[:16]}"
        self.cgroup = None
        if sandbox.cgroup:
            path = os.path.join(sandbox.cgroup, self.name)
            try:
                os.mkdir(path)
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(sandbox.limits.processes))
                self.cgroup = path
            except OSError:
                self.cgroup = None

    def wrap(self, cmd, work, env):
        """Return the command line that starts ``cmd`` (the kernel) in this sandbox."""
        sb, limits = self.sandbox, self.sandbox.limits
        settings = asdict(limits) | {"cgroup": self.cgroup, "level": sb.level}
        if os.geteuid() != 0:  # RLIMIT_NPROC counts all of the user's tasks (threads too)
            settings["nproc_base"] = _user_tasks()
        launcher = [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(settings)]
        if sb.level == "container":
            return [*launcher, "--", *self._container(cmd, work, env)]
        if sb.level == "bwrap":
            return [*launcher, "--", *self._bwrap(cmd, work), *cmd]
        if not sb.unshare:
            return [*launcher, "--", *cmd]
        # in its own process namespace the kernel is not pid 1 (which ignores the signals it
        # sends itself): the launcher stays as pid 1, starts it and waits
        init = [sys.executable, "-I", "-S", os.path.abspath(__file__), '{"init": true}']
        return [*launcher, "--", *UNSHARE, "--", *init, "--", *cmd]

    def _bwrap(self, cmd, work):
        args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
        for dev in sorted(os.listdir("/dev")):
            if dev.startswith("nvidia") or dev == "dri":
                args += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
        args += ["--tmpfs", "/tmp"]
        for path in _python_paths():
            args += ["--ro-bind", path, path]
        lib = os.path.join(self.run_dir, "lib")
        args += ["--bind", self.run_dir, self.run_dir, "--ro-bind", lib, lib]
        args += ["--chdir", str(work), "--"]
        return args

    def _container(self, cmd, work, env):
        sb = self.sandbox
        args = [sb.tool, "run", "--rm", "--name", self.name, "--network", "none", "--read-only"]
        args += ["--pids-limit", str(sb.limits.processes), "--memory", str(sb.limits.memory)]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        args += ["--user", f"{os.getuid()}:{os.getgid()}", "--tmpfs", "/tmp"]
        args += ["-v", f"{self.run_dir}:{self.run_dir}", "-w", str(work)]
        for name in sorted(env):
            if name != "JPY_PARENT_PID":
                args += ["-e", name]
        return [*args, os.environ[IMAGE_ENV], *cmd]

    def environment(self, env, home, tmp):
        """Return ``env`` with a fresh HOME and temporary folder, and the run's marker."""
        # folders of the grader's (its HOME, the checkout): the defaults lie in the fresh HOME
        moved = ("XDG_", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")
        env = {k: v for k, v in env.items() if not k.startswith(moved)}
        tmp = "/tmp" if self.sandbox.level in ("bwrap", "container") else str(tmp)
        env.update({"HOME": str(home), "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp, MARKER: self.token})
        for name in list(env):
            if name.startswith("JUPYTER_") and name.endswith(("_DIR", "_PATH")):
                del env[name]
        return env

    def kill(self):
        """Kill every process of this run (now, once)."""
        killed = 0
        if self.sandbox.level == "container" and self.sandbox.tool:
            subprocess.run(
                [self.sandbox.tool, "kill", self.name], capture_output=True, timeout=30, check=False
            )
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        pids = set(_cgroup_pids(self.cgroup)) | set(_marked(self.token))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        return killed

    def close(self):
        """Kill what is left of the run; return how many processes were still running."""
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        # what dies with the kernel (its process namespace, its process group) gets a moment
        grace = time.monotonic() + 2
        while time.monotonic() < grace and (_cgroup_pids(self.cgroup) or _marked(self.token)):
            time.sleep(0.05)
        first = self.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not _cgroup_pids(self.cgroup) and not _marked(self.token):
                break
            self.kill()
            time.sleep(0.05)
        if self.cgroup:  # empty once the killed processes have exited: a moment at most
            for _ in range(100):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.05)
        return first


def _cgroup_pids(cgroup):
    if not cgroup:
        return []
    try:
        text = open(os.path.join(cgroup, "cgroup.procs"), encoding="utf-8").read()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _marked(token):
    """Return the live processes whose environment carries the run's marker."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(name))
        except (OSError, IndexError):
            continue
    return found


def _user_tasks():
    """Return the number of tasks (processes and threads) this user runs now."""
    uid, total = os.getuid(), 0
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    total += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue
    return total


def _init(cmd):
    """Be pid 1 of a process namespace: start ``cmd``, reap orphans, exit when it does."""
    os.environ.pop("JPY_PARENT_PID", None)
    child = os.fork()
    if child == 0:
        os.execvp(cmd[0], cmd)
    # an interrupt reaches the kernel itself (same process group); a request to end is passed on
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os.kill(child, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _launch(settings, cmd):
    """Apply the limits to this process, then become ``cmd`` (they are inherited)."""
    if settings.get("init"):
        _init(cmd)
    import resource

    def limit(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    if settings.get("cgroup"):
        try:
            with open(os.path.join(settings["cgroup"], "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    if settings["level"] != "container":
        soft = settings["cpu"]
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
        except (ValueError, OSError):
            pass
        limit(resource.RLIMIT_DATA, settings["memory"])
        limit(resource.RLIMIT_FSIZE, settings["file_size"])
        limit(resource.RLIMIT_CORE, 0)
        limit(resource.RLIMIT_NPROC, settings["processes"] + settings.get("nproc_base", 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file too large: an error, not death
    if settings["level"] == "process":
        try:  # the kernel dies with the grader
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    # in a process namespace the kernel's parent is pid 1, which ipykernel takes for "the
    # parent died": it has no parent to watch here (the sandbox kills it with the grader)
    os.environ.pop("JPY_PARENT_PID", None)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _launch(json.loads(sys.argv[1]), sys.argv[3:])

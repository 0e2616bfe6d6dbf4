"""Running the submissions: :class:`Grader` executes each notebook afresh in its own sandboxed
kernel (:mod:`course_tools.sandbox`) with a pristine copy of ``course_utils`` and the grader's
hook (:mod:`course_tools.grading_kernel`), enforces the time and output limits, reads the
signed results, checks the guarded folders after each run and blames changes on the notebook
that made them, and writes the executed copies. :func:`kernel_environment` is what a student's
kernel inherits of the grader's environment.
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_utils.errors import CourseError

from . import sandbox
from .grading_guard import Guard, package_files
from .grading_kernel import SETUP_ENV
from .grading_records import Run
from .grading_results import read_results
from .grading_verdicts import progress_line
from .submissions import known_exercises, readable

# The environment a student's kernel inherits: names, and name prefixes.
KEEP_ENV = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",
    "SYSTEMROOT",
    "COMSPEC",
    "PATHEXT",
    "WINDIR",
}
KEEP_ENV_PREFIXES = (
    "LC_",
    "PYTHON",
    "CONDA_",
    "CUDA",
    "NVIDIA_",
    "XLA_",
    "TF_",
    "TPU_",
    "PJRT_",
    "COLAB_",
    "TORCH",
    "OMP_",
    "MKL_",
    "KMP_",
    "ATEN_",
    "ONEDNN_",
    "OPENBLAS_",
    "XDG_",
    "JUPYTER_",
    "MPLCONFIGDIR",
    "GRPC_",
)


class Grader:
    """Runs the submissions of one folder; see :func:`grade`."""

    def __init__(
        self, folder, out, *, root=None, timeout=120, jobs=1, say=print, isolation=None, limits=None
    ):
        import course_utils

        self.folder = Path(folder).resolve()
        self.out = Path(out).resolve()
        if self.out == self.folder or self.folder in self.out.parents:
            raise CourseError(
                f"--out {out} is inside the submissions folder; grading never writes there: "
                "choose another folder"
            )
        if timeout <= 0 or jobs <= 0:
            raise CourseError("--timeout and --jobs must be positive numbers")
        self.root = Path(root).resolve() if root else None
        self.timeout, self.jobs, self.say = timeout, jobs, say
        self.sandbox = sandbox.choose(isolation, limits, timeout)
        self.home = Path.home().resolve()
        self.table = known_exercises()
        self.source = (
            self.root / "course_utils"
            if self.root and (self.root / "course_utils" / "checks.py").is_file()
            else Path(course_utils.__file__).resolve().parent
        )
        # What a submission's kernel gets on its path, pristine: the lessons' helpers, and the
        # grader's own side (grading_kernel) without the rest of the course's machinery.
        kernel = Path(__file__).with_name("grading_kernel.py")
        self.package = {
            **package_files(self.source, "course_utils/"),
            "course_tools/__init__.py": b'"""The grader\'s side of a graded kernel (a copy)."""\n',
            "course_tools/grading_kernel.py": kernel.read_bytes(),
        }
        self.scratch = Path(tempfile.mkdtemp(prefix="course-grade-"))
        self.guards = [Guard(self.folder, "<submissions>")]
        if self.root:
            self.guards.append(
                Guard(
                    self.root,
                    "<course>",
                    skip=[self.folder, self.out, self.scratch],
                    remove_new=lambda rel: (
                        rel.startswith(("course_utils/", "course_tools/")) and rel.endswith(".py")
                    ),
                )
            )
        if not self.root or self.root not in self.source.parents:
            self.guards.append(
                Guard(self.source, "<course_utils>", remove_new=lambda rel: rel.endswith(".py"))
            )
        self.lock = threading.Lock()
        self.active, self.window = set(), set()  # runs going on; runs since the last check
        self.started = {}  # index -> Run
        self.pending = []  # (changes, indexes of the runs that may have made them)
        self.runs = []

    def labels(self, run_dir):
        """Return (absolute prefix, readable label) pairs, most specific first."""
        pairs = [
            (run_dir / "lib" / "course_utils", "<course_utils copy>"),
            (run_dir / "lib" / "course_tools", "<grading_kernel copy>"),
            (run_dir / "work", "<its folder>"),
            (self.scratch, "<grader scratch>"),
            (self.folder, "<submissions>"),
            (self.out, "<out>"),
        ]
        if self.root:
            pairs.append((self.root, "<course>"))
        return [(os.path.realpath(p), label) for p, label in pairs]

    def run_all(self, submissions):
        order = list(enumerate(submissions))
        try:
            if self.jobs == 1:
                for index, sub in order:
                    self._one(index, sub)
            else:
                with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                    list(pool.map(lambda pair: self._one(*pair), order))
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self._resolve()
        return sorted(self.runs, key=lambda r: r.index)

    def _one(self, index, sub):
        run = Run(sub, index)
        with self.lock:
            self.started[index] = run
            self.active.add(index)
            self.window.add(index)
        start = time.perf_counter()
        try:
            if sub.problem:
                run.stopped = sub.problem
            elif not sub.concept:
                run.stopped = (
                    "could not tell which exercise notebook this is (no course metadata, no "
                    "cu.check calls, no concept and track in its name)"
                )
            else:
                self._execute(index, sub, run)
        except Exception as err:  # the grader must go on with the next notebook
            run.stopped = f"the grader could not run it: {type(err).__name__}: {err}"
        run.seconds = time.perf_counter() - start
        with self.lock:
            self.runs.append(run)
            self.active.discard(index)
            changes = [c for g in self.guards for c in g.check()]
            if changes:
                self.pending.append((changes, self.window | self.active))
            self.window = set(self.active)
        self._write_executed(run)
        self.say(progress_line(run, self.table))
        with self.lock:
            self._resolve()

    def _resolve(self):
        """Attribute the changes found so far whose suspects have all finished."""
        for changes, indexes in list(self.pending):
            if indexes & self.active:
                continue
            self.pending.remove((changes, indexes))
            blamed = self._blame(changes, [self.started[i] for i in sorted(indexes)])
            for run in blamed:
                if run.void:
                    self.say(f"  -> {run.submission.rel}: {run.void}")

    def _blame(self, changes, candidates):
        """Write changes found after a run against the notebook(s) that may have made them.

        The candidates are the notebooks that ran since the previous clean check (one, with
        ``--jobs 1``); among several, the suspects are those that were refused file access,
        else those that ran commands. Returns the runs blamed.
        """
        worst = max(r.suspect for r in candidates)
        suspects = [r for r in candidates if r.suspect == worst]
        text = "; ".join(changes)
        if len(suspects) == 1:
            run = suspects[0]
            run.notes.append(f"changed files outside its folder: {text}")
            run.void = (
                "not counted: the notebook changed files outside its scratch folder "
                f"({text}); everything was put back"
            )
            return [run]
        names = ", ".join(r.submission.rel for r in suspects)
        for run in suspects:
            run.notes.append(
                f"while it ran beside {names}, files changed: {text} (which notebook did it "
                "is not known; grade with --jobs 1 to find out)"
            )
        return suspects

    def _execute(self, index, sub, run):
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        from course_utils.quiet import ENV as QUIET

        run_dir = self.scratch / f"run-{index:04d}"
        lib, work = run_dir / "lib", run_dir / "work"
        home, tmp, ipc = run_dir / "home", run_dir / "tmp", run_dir / "ipc"
        for rel, data in self.package.items():
            (lib / rel).parent.mkdir(parents=True, exist_ok=True)
            (lib / rel).write_bytes(data)
        for folder in (work, home, tmp, ipc):
            folder.mkdir(parents=True)
        (work / Path(sub.rel).name).write_bytes(sub.data)  # the scratch copy
        key = secrets.token_bytes(32)
        results = run_dir / "results.jsonl"
        setup = run_dir / "grading-setup.json"
        hidden = [self.folder, self.out, self.scratch]
        if self.home != Path(self.home.anchor):  # the grader's HOME, unless that is "/"
            hidden.append(self.home)
        frozen = [run_dir, self.source, *([self.root] if self.root else [])]
        # what the kernel's Python needs, even where it lies in the grader's HOME
        visible = [run_dir, *sandbox._python_paths(), *frozen]
        setup.touch(mode=0o600)
        setup.write_text(
            json.dumps(
                {
                    "key": key.hex(),
                    "results": str(results),
                    "hidden": [str(p) for p in hidden],
                    "visible": [str(p) for p in visible],
                    "frozen": [str(p) for p in frozen],
                    "free": [str(work), str(home), str(tmp)],
                    "no_network": not self.sandbox.network,
                }
            )
        )
        token = secrets.token_hex(16)
        box = self.sandbox.box(run_dir, token)
        env = box.environment(kernel_environment(os.environ), home, tmp)
        env.update(QUIET)
        env.update(
            {
                "PYTHONPATH": str(lib),  # the pristine copy comes before the installed one
                "PYTHONDONTWRITEBYTECODE": "1",
                "COURSE_WORKDIR": str(work / "build"),
                SETUP_ENV: str(setup),
                "MPLBACKEND": "Agg",
            }
        )
        nb = readable(sub.data)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        state = {"cell": None, "deadline": None}

        def started(**_):
            state["deadline"] = time.monotonic() + self.timeout

        def cell_started(cell=None, cell_index=None, **_):
            state["cell"] = cell_index

        def remaining(cell):
            deadline = state["deadline"] or time.monotonic() + self.timeout
            return max(1, int(deadline - time.monotonic() + 0.999))

        limits, kept = self.sandbox.limits, {"bytes": 0, "over": False}

        def too_much(size):
            kept["bytes"] += size
            if kept["bytes"] > limits.output and not kept["over"]:
                kept["over"] = True
                box.kill()
            return kept["over"]

        SandboxedKernelManager, LimitedClient = _client_classes()
        km = SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(ipc / "k"))
        km.connection_file = str(run_dir / "kernel.json")
        km.wrap = lambda cmd: box.wrap(cmd, work, env)
        client = LimitedClient(
            nb,
            km=km,
            kernel_name="python3",
            timeout_func=remaining,
            allow_errors=True,
            startup_timeout=max(60, min(self.timeout, 300)),
            resources={"metadata": {"path": str(work)}},
            extra_arguments=[
                "--IPKernelApp.log_level=ERROR",
                "--IPKernelApp.exec_lines="
                "__import__('course_tools.grading_kernel').grading_kernel.start()",
            ],
            on_notebook_start=started,
            on_cell_start=cell_started,
            # kill the kernel's whole process group at the end: nothing it started lives on
            shutdown_kernel="immediate",
        )
        # No mimic of the Output widget: its messages to the kernel stall a cell until its
        # timeout (see runner._engine), which would grade a widget cell as too slow.
        client.widget_registry = {}
        client.too_much, client.box = too_much, box
        log = open(run_dir / "kernel.log", "wb")  # noqa: SIM115  (the kernel's own stdout/stderr)
        walled = threading.Event()

        def wall():
            walled.set()
            box.kill()

        watchdog = threading.Timer(limits.wall, wall)
        watchdog.daemon = True
        watchdog.start()
        try:
            asyncio.run(client.async_execute(env=env, stdout=log, stderr=log))
        except CellTimeoutError:
            run.stopped = f"stopped at the notebook's time limit of {self.timeout} s"
            run.stopped_at = state["cell"]
        except DeadKernelError:
            run.stopped = "the kernel died (the process exited or was killed)"
            run.stopped_at = state["cell"]
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            run.stopped = f"could not be executed: {type(err).__name__}: {first[:300]}"
            run.stopped_at = state["cell"]
        finally:
            watchdog.cancel()
            log.close()
            left = box.close()
        if kept["over"]:
            run.stopped = f"stopped: it printed more than {limits.output / 2**20:g} MiB of output"
        elif walled.is_set():
            run.stopped = f"stopped at the sandbox's wall-time limit of {limits.wall:g} s"
        if left:
            run.notes.append(
                f"{left} process(es) it started were still running when its kernel ended: killed"
            )
        run.executed = nb
        self._read_results(run, results, key, run_dir)
        tampered = [
            rel
            for rel, data in self.package.items()
            if not (lib / rel).is_file() or (lib / rel).read_bytes() != data
        ]
        if tampered:
            run.void = (
                "not counted: the notebook changed the course_utils copy it was graded with ("
                + ", ".join(tampered[:5])
                + ")"
            )
            run.notes.append(run.void.removeprefix("not counted: "))
        shutil.rmtree(run_dir, ignore_errors=True)

    def _read_results(self, run, results, key, run_dir):
        found = read_results(results, key, self.labels(run_dir))
        run.ready, run.checks, run.suspect = found["ready"], found["checks"], found["suspect"]
        run.notes += found["notes"]
        if not run.ready and not run.stopped:
            said = (run_dir / "kernel.log").read_text(errors="replace").strip().splitlines()
            run.stopped = "the grader's checks could not be set up in its kernel" + (
                f" ({said[-1][:200]})" if said else ""
            )

    def _write_executed(self, run):
        if run.executed is None:
            return
        import nbformat

        sub = run.submission
        name = f"{sub.concept}-{sub.track}" if sub.concept else Path(sub.rel).stem
        folder = self.out / "executed" / safe_name(sub.student)
        with self.lock:
            target = folder / f"{name}.ipynb"
            n = 2
            while target.exists():
                target, n = folder / f"{name}-{n}.ipynb", n + 1
            folder.mkdir(parents=True, exist_ok=True)
            target.write_text(nbformat.writes(run.executed) + "\n", encoding="utf-8")
        run.output = target


_CLASSES = []
_CLASSES_LOCK = threading.Lock()


def _client_classes():
    """Return (kernel manager, notebook client) classes that start the kernel in a sandbox and
    stop it when it prints more than the output limit."""
    with _CLASSES_LOCK:
        if not _CLASSES:
            _CLASSES.extend(_make_client_classes())
        return _CLASSES


def _make_client_classes():
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class SandboxedKernelManager(AsyncKernelManager):
        wrap = None  # set per run: the kernel command line -> the sandboxed one

        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return self.wrap(cmd) if self.wrap else cmd

    class LimitedClient(NotebookClient):
        too_much = box = None
        OUTPUTS = {"stream", "display_data", "execute_result", "error", "update_display_data"}

        async def async_start_new_kernel(self, **kwargs):
            await super().async_start_new_kernel(**kwargs)
            provisioner = getattr(self.km, "provisioner", None)
            if self.box is not None and provisioner is not None:
                self.box.pgid = getattr(provisioner, "pgid", None)

        def process_message(self, msg, cell, cell_index):
            if self.too_much and msg.get("msg_type") in self.OUTPUTS:
                content = msg.get("content", {})
                size = (
                    len(content.get("text", ""))
                    if msg["msg_type"] == "stream"
                    else len(json.dumps(content, default=str))
                )
                if self.too_much(size):
                    return None  # over the limit: kept no more, the kernel is being stopped
            return super().process_message(msg, cell, cell_index)

    return SandboxedKernelManager, LimitedClient


def kernel_environment(environ):
    """Return the part of ``environ`` a student's kernel gets: what Python, the frameworks and
    the accelerators need (paths, locale, threads, CUDA/TPU settings), not the grader's tokens
    or the course's own settings."""
    kept = {}
    for name, value in environ.items():
        if name in KEEP_ENV or name.startswith(KEEP_ENV_PREFIXES):
            kept[name] = value
    for name in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"):
        kept.pop(name, None)
    return kept


def relabel(text, labels):
    """Replace scratch and folder paths in ``text`` by readable labels."""
    for prefix, label in labels:
        text = text.replace(prefix, label)
    return text


def safe_name(text):
    """Return ``text`` usable as a file name (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unknown"

"""Grade students' exercise notebooks: ``course grade SUBMISSIONS_DIR``.

Every notebook found under the folder (one folder per student, or files named after the
student, or both) is identified (student, concept, track) and executed afresh in its own
kernel, in a scratch copy, with a time limit per notebook. The grade of each exercise is what
the course's own checker said *in that fresh run*, read from a results file signed with a
per-run key (:mod:`course_tools.grading_kernel`); the notebook's saved outputs are never
trusted. Statuses: ``passed``, ``wrong``, ``error``, ``not solved`` (the checker's verdicts;
``error`` also when the notebook was stopped (time, output or another limit, a crash) while its
check cell ran), and ``did not run`` (no verdict: the notebook was stopped before the check,
is malformed, skipped or bypassed the check), each with the checker's message or the reason.

Isolation, per notebook: a fresh kernel in the strongest sandbox the machine offers
(:mod:`course_tools.sandbox`: a container, bubblewrap, or a plain process with a fresh HOME, no
network where ``unshare`` allows it, resource limits and a wall-time limit; the kernel talks to
the grader through Unix sockets in its run folder, and everything it started is killed at the
end); output past a limit stops it; its working folder is an empty scratch folder; a
pristine copy of ``course_utils`` (taken when grading starts) first on its path; the grader's
audit hook refusing changes to the course, the submissions and the grader's files (and access
to the grader's HOME, where the sandbox does not already hide it); and, after
the run, checksums of the submissions, the checkout and the pristine copy, with anything
changed put back from the copy in memory and written down against the notebook that ran.
:mod:`course_tools.gradebook` writes the table (CSV, HTML, JSON).
"""

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from course_utils import checks
from course_utils.errors import CourseError

from . import sandbox
from .grading_kernel import SETUP_ENV, sign
from .submissions import SKIP_DIRS, Submission, find, identify, known_exercises, readable

STATUSES = ("passed", "wrong", "error", "not solved", "did not run")
KEEP_BYTES = 20 * 2**20  # files up to this size can be put back if a notebook changes them
REVIEW_WORDS = (  # code that reaches for the grading machinery: worth a look by a person
    "REGISTRY",
    "grading_kernel",
    SETUP_ENV,
    checks.MIME,
    "addaudithook",
    "__closure__",
    "ctypes",
    "/proc/",
    "direct_url",
)
CHECK_CALL = r"check\(\s*[\"']{}[\"']"
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


@dataclass
class Run:
    """What happened when one submission was executed."""

    submission: Submission
    index: int = -1  # order in which it was found
    seconds: float = 0.0
    stopped: str | None = None  # why execution ended early (timeout, kernel died, ...)
    stopped_at: int | None = None  # index of the cell that was running then
    ready: bool = False  # the grading hook started in the kernel
    checks: list = field(default_factory=list)  # signed check results, in order
    notes: list = field(default_factory=list)
    void: str | None = None  # why its results are not counted
    executed: object = None  # the executed notebook (nbformat node)
    output: Path | None = None  # where the executed copy was written
    suspect: int = 0  # 2: it was refused file access, 1: it ran commands, 0: neither


@dataclass
class Row:
    """One exercise of one submission, as it goes into the table."""

    student: str
    concept: str
    track: str
    exercise: str
    title: str
    status: str
    message: str
    hint: str
    notebook: str
    seconds: float
    notes: str


# ----------------------------------------------------------------------------- guarding


def _digest(data):
    return hashlib.sha256(data).hexdigest()


class Guard:
    """Checksums (and, for files up to 20 MiB, the bytes) of every file under a folder.

    ``check()`` compares the folder with the snapshot, puts back what changed or went missing,
    removes new files where ``remove_new(rel)`` says so, and describes what it did.
    """

    def __init__(self, folder, label, *, skip=(), remove_new=lambda rel: False):
        self.folder, self.label = Path(folder), label
        self.skip = [Path(s).resolve() for s in skip]
        self.remove_new = remove_new
        self.files = {rel: self._read(path) for rel, path in self._walk()}

    def _walk(self):
        for here, dirs, names in os.walk(self.folder):
            here = Path(here)
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and not (here == self.folder and d.startswith("."))
                and (here / d).resolve() not in self.skip
            )
            for name in names:
                path = here / name
                if not path.is_symlink() and path.is_file():
                    yield path.relative_to(self.folder).as_posix(), path

    @staticmethod
    def _read(path):
        data = path.read_bytes()
        return _digest(data), (data if len(data) <= KEEP_BYTES else None)

    def check(self):
        """Return descriptions of what changed since the snapshot (after putting it back)."""
        said = []
        now = dict(self._walk())
        for rel, (digest, data) in self.files.items():
            path = self.folder / rel
            if rel in now:
                try:
                    same = _digest(path.read_bytes()) == digest
                except OSError:
                    same = False
                if same:
                    continue
                what = "changed"
            else:
                what = "deleted"
            if data is None:
                said.append(f"{what} {self.label}/{rel} (too large to put back)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.is_dir():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            path.write_bytes(data)
            said.append(f"{what} {self.label}/{rel} (put back)")
        for rel in sorted(set(now) - set(self.files)):
            if self.remove_new(rel):
                (self.folder / rel).unlink(missing_ok=True)
                said.append(f"added {self.label}/{rel} (removed)")
            else:
                said.append(f"added {self.label}/{rel} (left in place)")
        return said


def package_files(folder, prefix=""):
    """Return ``{prefix/relative path: bytes}`` of the package at ``folder`` (no caches)."""
    folder = Path(folder)
    return {
        f"{prefix}{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


# ----------------------------------------------------------------------------- running


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


def read_results(path, key, labels=()):
    """Return what a kernel signed in its results file: ``{ready, checks, notes, suspect}``.

    Lines whose signature does not match ``key`` are not believed; they are counted in a note.
    ``labels`` (prefix, label) pairs make the paths in notes readable.
    """
    found = {"ready": False, "checks": [], "notes": [], "suspect": 0}
    forged = 0
    lines = Path(path).read_text(encoding="utf-8").splitlines() if Path(path).exists() else []
    for line in lines:
        try:
            record = json.loads(line)
            body, sig = record["body"], record["sig"]
            genuine = isinstance(body, str) and secrets.compare_digest(sign(key, body), str(sig))
            payload = json.loads(body) if genuine else None
        except (ValueError, KeyError, TypeError):
            genuine, payload = False, None
        if not genuine or not isinstance(payload, dict):
            forged += 1
            continue
        kind = payload.get("kind")
        if kind == "ready":
            found["ready"] = True
        elif kind == "check":
            found["checks"].append(payload)
        elif kind in ("blocked", "command"):
            found["suspect"] = max(found["suspect"], 2 if kind == "blocked" else 1)
            word = "refused" if kind == "blocked" else "ran the command"
            found["notes"].append(f"{word}: {relabel(str(payload.get('detail', '')), labels)}")
    if forged:
        found["notes"].append(f"{forged} unsigned line(s) in its results file were ignored")
    return found


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


# ----------------------------------------------------------------------------- verdicts


def verdicts(run, table):
    """Return the :class:`Row` list of one run: one row per exercise of its notebook."""
    sub = run.submission
    exercises = table.get((sub.concept, sub.track), []) if sub.concept else []
    notes = list(run.notes) + review_notes(sub, run)
    claims = stored_claims(sub.data)
    if not exercises:
        reason = run.stopped or f"the course has no checkers for {sub.key}"
        return [_row(sub, run, "", "", "did not run", reason, None, notes)]
    rows = []
    for ex_id, title in exercises:
        status, message, hint = _verdict(run, ex_id)
        claim = claims.get(ex_id)
        extra = []
        if claim and claim != status:
            extra.append(f"its saved outputs claimed {claim!r}: ignored, the fresh run decides")
        rows.append(_row(sub, run, ex_id, title, status, message, hint, notes + extra))
    return rows


def _row(sub, run, ex_id, title, status, message, hint, notes):
    return Row(
        student=sub.student,
        concept=sub.concept or "",
        track=sub.track or "",
        exercise=ex_id,
        title=title,
        status=status,
        message=message,
        hint=hint or "",
        notebook=sub.rel,
        seconds=round(run.seconds, 1),
        notes="; ".join(dict.fromkeys(notes)),
    )


def _verdict(run, ex_id):
    """Return (status, message, hint) for one exercise of a run."""
    if run.void:
        return "error", run.void, None
    signed = [c for c in run.checks if c.get("exercise") == ex_id]
    if signed:
        last = signed[-1]
        status = last.get("status")
        if status not in STATUSES[:4]:
            return "error", f"unexpected status {status!r} from the checker", None
        return status, str(last.get("message") or ""), last.get("hint")
    nb = run.executed
    if nb is None:
        return "did not run", run.stopped or "it was not executed", None
    calls = [
        (i, c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and re.search(CHECK_CALL.format(re.escape(ex_id)), c.source)
    ]
    if not calls:
        reason = f'the notebook has no cu.check("{ex_id}", ...) cell'
        return "did not run", reason + (f"; {run.stopped}" if run.stopped else ""), None
    index, cell = calls[-1]
    if run.stopped_at is not None and index == run.stopped_at:
        # the answer itself was running: it hung, crashed or went over a limit
        return "error", f"{run.stopped}, in this check cell", None
    if run.stopped_at is not None and index > run.stopped_at:
        return "did not run", f"{run.stopped}, before its check cell", None
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        err = errors[0]
        return "error", f"the check cell raised {err.get('ename')}: {err.get('evalue')}", None
    if cell.execution_count is None and run.stopped:
        return "did not run", run.stopped, None
    shown = [o for o in cell.get("outputs", []) if checks.MIME in o.get("data", {})]
    reason = "the check cell ran, but the course's checker never gave a verdict"
    if shown:
        reason += " (the check result it displayed did not come from the checker: ignored)"
    return "did not run", reason, None


def stored_claims(data):
    """Return ``{exercise: status}`` that a submitted notebook's saved outputs show."""
    try:
        nb = json.loads(data.decode("utf-8"))
        import nbformat

        return {c["exercise"]: c["status"] for c in checks.read_checks(nbformat.from_dict(nb))}
    except Exception:  # malformed: nothing is claimed
        return {}


def review_notes(sub, run):
    """Return notes about a run that a person may want to look at."""
    notes = []
    try:
        nb = json.loads(sub.data.decode("utf-8"))
        code = "\n".join(
            "".join(c.get("source", ""))
            for c in nb.get("cells", [])
            if c.get("cell_type") == "code"
        )
    except Exception:
        code = ""
    mentioned = [w for w in REVIEW_WORDS if w in code]
    if mentioned:
        notes.append(f"its code mentions {', '.join(mentioned)}: worth reading")
    if run.executed is not None:
        signed = Counter((c.get("exercise"), c.get("status")) for c in run.checks)
        fake = 0
        for cell in run.executed.cells:
            for out in cell.get("outputs", []):
                shown = out.get("data", {}).get(checks.MIME)
                if isinstance(shown, dict):
                    pair = (shown.get("exercise"), shown.get("status"))
                    if signed[pair] > 0:
                        signed[pair] -= 1
                    else:
                        fake += 1
        if fake:
            notes.append(
                f"it displayed {fake} check result(s) that did not come from the course's "
                "checker (ignored)"
            )
    if sub.found_by == "name":
        notes.append("exercise told from the file name (no course metadata in the notebook)")
    return notes


def progress_line(run, table):
    sub = run.submission
    statuses = Counter(r.status for r in verdicts(run, table))
    told = ", ".join(f"{n} {s}" for s, n in statuses.items())
    flag = " [see notes]" if run.notes else ""
    return f"{run.seconds:6.1f} s  {sub.student:<16} {sub.key:<24} {told}{flag}"


def grade(folder, out, *, root=None, timeout=120, jobs=1, say=print, isolation=None, limits=None):
    """Grade every notebook under ``folder``; write the gradebook under ``out``.

    Returns ``(rows, runs)``. Raises CourseError for bad input (a missing folder, no notebooks,
    an output folder inside the submissions, an isolation level that is unknown or not
    available). ``isolation``: a level of :mod:`course_tools.sandbox` (default: the strongest
    available); ``limits``: a :class:`course_tools.sandbox.Limits`.
    """
    from . import gradebook

    folder = Path(folder)
    paths = find(folder)
    grader = Grader(
        folder,
        out,
        root=root,
        timeout=timeout,
        jobs=jobs,
        say=say,
        isolation=isolation,
        limits=limits,
    )
    submissions = [identify(p, folder, grader.table) for p in paths]
    for line in grader.sandbox.header():
        say(line)
    say(
        f"Grading {len(submissions)} notebook(s) from {folder} (limit {timeout} s each, "
        f"{jobs} at a time) -> {out}"
    )
    shutil.rmtree(grader.out / "executed", ignore_errors=True)
    runs = grader.run_all(submissions)
    rows = [row for run in runs for row in verdicts(run, grader.table)]
    gradebook.write(rows, runs, grader.out, timeout=timeout, folder=folder)
    return rows, runs

"""Execute notebooks headless with papermill; gather their records; summarise failures."""

import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.records import read_records

from . import notebooks

PARAMETERS = ("quick", "seed", "device")


@dataclass
class Outcome:
    """What happened when one notebook ran."""

    entry: notebooks.Entry
    output: Path
    seconds: float
    ok: bool
    error: str | None = None
    records: list = field(default_factory=list)
    # seconds spent waiting while a timed cell of another notebook ran alone (run_all):
    # "start-up" and code cell indexes (as timing.cell_times counts them)
    waits: dict = field(default_factory=dict)

    @property
    def waited(self):
        """Seconds spent waiting in all, while other notebooks' timed cells ran alone."""
        return sum(self.waits.values())


class Gate:
    """Who may use the cores while ``run_all`` executes notebooks side by side.

    A code cell that times something (``timing.timed_cell``) holds the machine alone: it waits until
    every other notebook's running cell has finished, and no other cell or kernel start-up begins
    until it ends. Everything else (kernel start-ups and all other cells) shares the cores. A
    timed cell that is waiting goes first, so it never waits behind a stream of short cells.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._shared = 0  # cells and kernel start-ups running now
        self._alone = False  # a timed cell running now
        self._waiting = 0  # timed cells waiting for the machine
        self.log = []  # ("alone" | "shared", start, end): what tests/test_timing.py checks

    @contextmanager
    def hold(self, alone):
        with self._cond:
            if alone:
                self._waiting += 1
                self._cond.wait_for(lambda: not self._alone and self._shared == 0)
                self._waiting -= 1
                self._alone = True
            else:
                self._cond.wait_for(lambda: not self._alone and self._waiting == 0)
                self._shared += 1
        began = time.perf_counter()
        try:
            yield
        finally:
            with self._cond:
                self.log.append(("alone" if alone else "shared", began, time.perf_counter()))
                if alone:
                    self._alone = False
                else:
                    self._shared -= 1
                self._cond.notify_all()


GATE = None  # the running ``run_all``'s Gate; None: cells run as they come (refresh, tests)
_CURRENT = threading.local()  # in run_all's threads: .waits, the running notebook's waits


ENGINE = "course-nbclient"
_REGISTERED = []  # holds ENGINE once it is registered with papermill


def _engine():
    """Register (once) and return the name of the papermill engine the course executes with.

    It is papermill's nbclient engine without nbclient's mimic of the Output widget. That mimic
    answers each output shown inside an Output widget (``ipywidgets.interact`` draws its plot in
    one) by sending a ``comm_msg`` on the shell socket, while the same client is awaiting the
    cell's ``execute_reply`` on that socket. With ipykernel 7, pyzmq 27 and nbclient 0.11 the
    await then often misses the reply and wakes only when the cell's timeout expires: measured
    here, 8 of 30 runs of a one-slider notebook stalled for the whole 20 s timeout they were
    given (jupyter/nbclient#312), so a widget cell could stall ``course run`` for 10 minutes.
    Without the mimic nothing is sent during a cell, and the outputs an Output widget would have
    captured go to the cell itself, which is what a reader of the executed copy wants to see.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    if _REGISTERED:
        return ENGINE

    from .timing import timed_cell

    class Client(PapermillNotebookClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.widget_registry = {}  # no front-end widget is mimicked
            self.code_index = 0  # counted as timing.cell_times does

        # Under run_all's Gate: a kernel starting up shares the cores; a timed cell runs alone.
        def start_new_kernel(self, **kwargs):
            with _held(False):
                return super().start_new_kernel(**kwargs)

        def start_new_kernel_client(self):
            with _held(False):  # waits for the kernel to be ready: its start-up work
                return super().start_new_kernel_client()

        def execute_cell(self, cell, cell_index, *args, **kwargs):
            code = cell.cell_type == "code"
            counted = code and "injected-parameters" not in cell.metadata.get("tags", [])
            what = self.code_index if counted else "start-up"
            self.code_index += counted
            with _held(code and timed_cell(cell.source), what):
                return super().execute_cell(cell, cell_index, *args, **kwargs)

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            # papermill's own NBClientEngine.execute_managed_notebook, with the client above,
            # and the kernel's working directory given to the kernel (nbclient's resources)
            # rather than set for this whole process: papermill's ``cwd`` changes directory
            # around the run, and two runs in two threads (run_all) each restore the other's.
            kernel_cwd = kwargs.pop("kernel_cwd", None)
            if kernel_cwd:
                kwargs["resources"] = {"metadata": {"path": kernel_cwd}}
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            return Client(nb_man, **final_kwargs).execute()

    papermill_engines.register(ENGINE, Engine)
    _REGISTERED.append(ENGINE)
    return ENGINE


@contextmanager
def _held(alone, what="start-up"):
    """Hold the running ``run_all``'s Gate (see :class:`Gate`), or nothing outside one; the
    time spent waiting for it is added to the running notebook's ``waits[what]``."""
    if GATE is None:
        yield
        return
    asked = time.perf_counter()
    with GATE.hold(alone):
        waits = getattr(_CURRENT, "waits", None)
        if waits is not None:
            waits[what] = waits.get(what, 0.0) + time.perf_counter() - asked
        yield


@contextmanager
def _environment(env):
    """Set ``env`` in this process's environment (which kernels inherit) and put it back after."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(entry, output, *, parameters=None, cwd=None, timeout=600, env=None):
    """Run one notebook with papermill into ``output``; return an :class:`Outcome`.

    ``parameters`` override the notebook's ``parameters`` cell; ``env`` entries are set in the
    kernel's environment for the run. Failures are caught and described (notebook, cell, error).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = None
    with _environment(env or {}):
        try:
            papermill.execute_notebook(
                str(entry.path),
                str(output),
                parameters=parameters or {},
                kernel_cwd=str(cwd or output.parent),  # not papermill's cwd: see _engine
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
                engine_name=_engine(),
                # ipykernel warns on stderr about TCP on 127.0.0.1, and logs an error when the
                # interrupt jupyter_client sends before each shutdown lands between two events;
                # keep the runner's output readable (a cell's own errors are in the notebook)
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        except PapermillExecutionError:
            error = unexpected_error(entry, output) or None
            if error is None:
                drop_error_banner(output)
        except Exception as err:  # kernel died, timeout, malformed notebook
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            error = f"{entry.path.as_posix()}: {type(err).__name__}: {first}"
    seconds = time.perf_counter() - start
    records = read_records(output) if output.exists() else []
    return Outcome(entry, output, seconds, error is None, error, records)


def unexpected_error(entry, output):
    """Describe the first error output in a cell *not* tagged ``raises-exception``, or "".

    papermill fails a run on any error output, even in a cell that is meant to raise to show
    the student an error; the course only counts errors that were not meant to happen.
    """
    added = {"papermill-error-cell-tag", "injected-parameters"}  # cells papermill inserted
    nb = notebooks.read(output)
    source_cells = [c for c in nb.cells if not added & set(c.metadata.get("tags", []))]
    for index, cell in enumerate(source_cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return (
                    f"{entry.path.as_posix()}: cell {index} (execution count "
                    f"{cell.get('execution_count')}) raised {out['ename']}: {out['evalue']}"
                )
    return ""


def drop_error_banner(output):
    """Remove the banner cells papermill inserts when a cell raised (here: on purpose)."""
    nb = notebooks.read(output)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    notebooks.write(nb, output)


def default_jobs():
    """How many notebooks ``run_all`` executes side by side: two where there are two cores.

    On two cores a pair overlaps one notebook's kernel start-up, imports and waits for its
    worker processes with the other's work; a cell that times something still runs alone
    (:class:`Gate`).
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run_all(
    root, entries, out, *, quick=True, seed=0, device="auto", timeout=600, progress=True, jobs=None
):
    """Execute ``entries`` into ``out/<set>/<concept>/<track>.ipynb``; return the outcomes.

    ``jobs`` notebooks run at a time (default :func:`default_jobs`), in the entries' order; a
    cell that times something runs alone (:class:`Gate`). The claims lab's twins share one
    measurement (``COURSE_CLAIMS_SHARE``, a folder under ``out`` emptied first). The outcomes
    keep the entries' order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    global GATE
    out = Path(out)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    parameters = {"quick": quick, "seed": seed, "device": device}
    share = out / "claims-share"
    shutil.rmtree(share, ignore_errors=True)
    env = {
        "COURSE_WORKDIR": str(out / "work"),
        "COURSE_ROOT": str(root),
        "COURSE_CLAIMS_SHARE": str(share),
    }
    outcomes = [None] * len(entries)
    bar = tqdm(total=len(entries), unit="notebook", disable=not progress)
    bar.set_description(f"{jobs} notebook(s) at a time, timed cells alone")

    def one(index):
        entry = entries[index]
        target = out / entry.set / entry.concept / f"{entry.track}.ipynb"
        _CURRENT.waits = {}
        outcome = execute(entry, target, parameters=parameters, timeout=timeout)
        outcome.waits, _CURRENT.waits = _CURRENT.waits, None
        outcomes[index] = outcome
        status = "ok" if outcome.ok else "FAILED"
        waited = outcome.waited
        note = f"  (of which {waited:.1f} s waiting for a timed cell)" if waited >= 0.1 else ""
        bar.write(f"{status:6} {outcome.seconds:6.1f} s  {entry.key}{note}")
        bar.update()

    # Set once for the whole run: kernels started side by side must all see it.
    GATE = Gate() if jobs > 1 else None
    try:
        with _environment(env), ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, range(len(entries))))
    finally:
        GATE = None
        bar.close()
        shutil.rmtree(share, ignore_errors=True)
    return outcomes

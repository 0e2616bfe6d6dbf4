"""Execute notebooks headless with papermill; gather their records; summarise failures."""

import os
import time
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

    class Client(PapermillNotebookClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.widget_registry = {}  # no front-end widget is mimicked

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
            # papermill's own NBClientEngine.execute_managed_notebook, with the client above
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


def execute(entry, output, *, parameters=None, cwd=None, timeout=600, env=None):
    """Run one notebook with papermill into ``output``; return an :class:`Outcome`.

    ``parameters`` override the notebook's ``parameters`` cell; ``env`` entries are set in the
    kernel's environment for the run. Failures are caught and described (notebook, cell, error).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(entry.path),
            str(output),
            parameters=parameters or {},
            cwd=str(cwd or output.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            engine_name=_engine(),
            # ipykernel warns on stderr about TCP on 127.0.0.1; keep the runner's output readable
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError:
        error = unexpected_error(entry, output) or None
        if error is None:
            drop_error_banner(output)
    except Exception as err:  # kernel died, timeout, malformed notebook
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        error = f"{entry.path.as_posix()}: {type(err).__name__}: {first}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
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

    Only notebooks that time nothing run side by side (``timing.times_something``); on two
    cores a pair overlaps one notebook's kernel start-up, imports and waits for its worker
    processes with the other's work.
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run_all(
    root, entries, out, *, quick=True, seed=0, device="auto", timeout=600, progress=True, jobs=None
):
    """Execute ``entries`` into ``out/<set>/<concept>/<track>.ipynb``; return the outcomes.

    Notebooks that time something run one at a time; consecutive ones that time nothing run
    ``jobs`` at a time (default :func:`default_jobs`). The outcomes keep the entries' order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from .timing import times_something

    out = Path(out)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    parameters = {"quick": quick, "seed": seed, "device": device}
    env = {"COURSE_WORKDIR": str(out / "work"), "COURSE_ROOT": str(root)}
    outcomes = [None] * len(entries)
    bar = tqdm(total=len(entries), unit="notebook", disable=not progress)

    def one(index):
        entry = entries[index]
        target = out / entry.set / entry.concept / f"{entry.track}.ipynb"
        outcome = execute(entry, target, parameters=parameters, timeout=timeout)
        outcomes[index] = outcome
        status = "ok" if outcome.ok else "FAILED"
        side = "" if alone[index] else "  (beside another notebook)"
        bar.write(f"{status:6} {outcome.seconds:6.1f} s  {entry.key}{side}")
        bar.update()

    # Set once for the whole run: kernels started side by side must all see it.
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        alone = [jobs == 1 or times_something(e.path) for e in entries]
        index = 0
        while index < len(entries):
            if alone[index]:
                bar.set_description(entries[index].key)
                one(index)
                index += 1
                continue
            batch = []
            while index < len(entries) and not alone[index]:
                batch.append(index)
                index += 1
            bar.set_description(f"{len(batch)} notebooks, {jobs} at a time")
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, batch))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        bar.close()
    return outcomes

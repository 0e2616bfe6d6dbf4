"""Execute notebooks headless with papermill; gather their records; summarise failures."""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks
from .records import read_records

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


def run_all(root, entries, out, *, quick=True, seed=0, device="auto", timeout=600, progress=True):
    """Execute ``entries`` into ``out/<set>/<concept>/<track>.ipynb``; return the outcomes."""
    from tqdm.auto import tqdm

    out = Path(out)
    parameters = {"quick": quick, "seed": seed, "device": device}
    env = {"COURSE_WORKDIR": str(out / "work"), "COURSE_ROOT": str(root)}
    outcomes = []
    bar = tqdm(entries, unit="notebook", disable=not progress)
    for entry in bar:
        bar.set_description(entry.key)
        target = out / entry.set / entry.concept / f"{entry.track}.ipynb"
        outcome = execute(entry, target, parameters=parameters, timeout=timeout, env=env)
        outcomes.append(outcome)
        status = "ok" if outcome.ok else "FAILED"
        bar.write(f"{status:6} {outcome.seconds:6.1f} s  {entry.key}")
    return outcomes

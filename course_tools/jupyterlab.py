"""The course's JupyterLab, driven by a real browser: start it, use a notebook, always stop it.

    with lab_server(folder) as lab, browser.chromium() as chrome:
        page = chrome.new_page()
        open_notebook(page, lab, "notebooks/03_gpu_offload/pytorch.ipynb")
        run_all(page)                        # Run > Run All Cells
        cells = wait_until_run(page)         # what JupyterLab shows: counts, tags, errors
        assert unexpected_errors(cells) == []

:func:`lab_server` starts JupyterLab on 127.0.0.1 and a free port, with a random token and its
own settings, workspaces, data, runtime and IPython folders (nothing of yours is read or
changed, and the kernel is the course environment's Python), without news or update checks,
and with the app exposed as ``window.jupyterapp`` so that the notebook's model can be read.
On exit, also after an error, it asks the server to shut down (which stops its kernels), then
terminates and kills whatever is left of its process tree.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from course_utils.browser import free_port
from course_utils.errors import CourseError
from course_utils.quiet import ENV as QUIET_ENV

# JupyterLab user settings for a test: every cell in the page (no virtual scrolling, so each
# output can be checked), and no question about news.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class Lab:
    """A running JupyterLab: its address, token, folder, process and log file."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen
    log: Path
    tree: list = field(default_factory=list)  # filled on exit: the processes that were stopped

    def url_for(self, path):
        """Return the address that opens ``path`` (relative to the root folder) in a fresh layout."""
        return f"{self.url}/lab/tree/{quote(str(path))}?token={self.token}&reset"

    def api(self, path, method="GET", timeout=10):
        """Return the JSON answer of the server's REST API at ``path`` (e.g. ``/api/kernels``)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def processes(self):
        """Return the server's process and all its descendants (kernels included), as psutil objects."""
        return process_tree(self.process.pid)

    def log_tail(self, chars=3000):
        """Return the end of the server's log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def command(root_dir, port, token, config_dir, python=None):
    """Return the command line that starts the course's JupyterLab for a browser to drive."""
    root_flag = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        python or sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={Path(config_dir) / 'settings'}",
        f"--LabApp.workspaces_dir={Path(config_dir) / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
        *root_flag,
    ]


def write_settings(config_dir):
    """Write :data:`SETTINGS` as JupyterLab user settings under ``config_dir/settings``."""
    for name, values in SETTINGS.items():
        path = Path(config_dir) / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def process_tree(pid):
    """Return the process ``pid`` and its descendants that are still running (psutil objects)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(processes):
    """Return those of ``processes`` that are still running (zombies count as gone)."""
    import psutil

    left = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def stop(process, tree=None, grace=15.0, shutdown=None):
    """Stop a server and its process tree; return the processes that survived (normally none).

    ``shutdown()`` is tried first (the server's own way out, which stops its kernels); then
    SIGTERM, then SIGKILL, to everything in ``tree`` (default: the tree as it is now).
    """
    import psutil

    tree = list(tree if tree is not None else process_tree(process.pid))
    if shutdown is not None and process.poll() is None:
        with contextlib.suppress(Exception):
            shutdown()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive(tree)
        if not left:
            break
        for p in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        psutil.wait_procs(left, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)  # reap our own child
    return alive(tree)


def wait_ready(lab, timeout):
    """Wait until the server answers ``/api/status``; raise CourseError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise CourseError(
                f"JupyterLab exited with status {lab.process.returncode} before it was ready:\n"
                f"{lab.log_tail()}"
            )
        try:
            lab.api("/api/status", timeout=2)
            return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.25)
    raise CourseError(f"JupyterLab did not answer within {timeout} s:\n{lab.log_tail()}")


@contextlib.contextmanager
def lab_server(root_dir, *, timeout=120, python=None, env=None):
    """Yield a running :class:`Lab` serving ``root_dir``; stop it and its kernels on exit.

    Kernels get the course's quiet environment (no TensorFlow C++ logs) and ``env``. Raises
    CourseError when the server does not start; whatever started is stopped in every case.
    """
    import secrets

    with tempfile.TemporaryDirectory(prefix="course-lab-") as scratch:
        scratch = Path(scratch)
        write_settings(scratch)
        port, token = free_port(), secrets.token_hex(16)
        full_env = {
            **os.environ,
            **QUIET_ENV,
            "JUPYTER_CONFIG_DIR": str(scratch / "config"),
            "JUPYTER_DATA_DIR": str(scratch / "data"),  # no user kernelspec replaces the course's
            "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
            "IPYTHONDIR": str(scratch / "ipython"),  # no user startup scripts in the kernels
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        full_env.pop("PYTHONPATH", None)
        log = scratch / "server.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                command(root_dir, port, token, scratch, python),
                cwd=root_dir,
                env=full_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a Ctrl+C here does not hit it
            )
        lab = Lab(f"http://127.0.0.1:{port}", token, Path(root_dir), process, log)
        try:
            wait_ready(lab, timeout)
            yield lab
        finally:
            lab.tree = process_tree(process.pid)  # the server and its kernels, as they are now
            left = stop(process, lab.tree, shutdown=lambda: lab.api("/api/shutdown", "POST"))
        if left:  # reached only when the block itself succeeded
            raise CourseError(f"processes left running after JupyterLab stopped: {left}")


# ---------------------------------------------------------------- the notebook in the browser

# JavaScript run in the page: the current notebook's code cells as JupyterLab's model holds them.
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const found = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== "code") continue;
    const outputs = cell.outputs.toJSON();
    found.push({
      index: i,
      source: cell.sharedModel.getSource(),
      tags: cell.getMetadata("tags") || [],
      count: cell.executionCount,
      errors: outputs.filter(o => o.output_type === "error").map(o => `${o.ename}: ${o.evalue}`),
      types: outputs.map(o => o.output_type),
    });
  }
  return found;
}"""

KERNEL_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}"""


def open_notebook(page, lab, path, timeout=90):
    """Open ``path`` in JupyterLab in ``page`` and wait until its kernel is idle."""
    page.goto(lab.url_for(path), timeout=timeout * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    page.wait_for_function(f"({KERNEL_JS})() === 'idle'", timeout=timeout * 1000)


def run_all(page):
    """Choose Run > Run All Cells in JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def busy_prompts(page):
    """Return how many cells show ``[*]`` (running or queued)."""
    return page.locator(".jp-InputPrompt", has_text="[*]").count()


def wait_until_run(page, timeout=300, settle=2.0):
    """Wait until every code cell has run, or the run stopped at an error; return the cells.

    A run that stops early (a cell raised without the ``raises-exception`` tag, so the queue
    was cancelled) ends with cells that have no execution count; the caller sees them.
    """
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        cells = code_cells(page)
        pending = [c for c in cells if c["source"].strip() and c["count"] is None]
        idle = page.evaluate(KERNEL_JS) == "idle" and busy_prompts(page) == 0
        if idle and not pending:
            return cells
        if idle:  # idle with cells left: cancelled, unless the run is about to start
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > settle:
                return cells
        else:
            quiet_since = None
        time.sleep(0.5)
    raise TimeoutError(f"the notebook was still running after {timeout} s")


def code_cells(page):
    """Return the code cells of the open notebook: index, source, tags, count, errors."""
    return page.evaluate(CELLS_JS)


def unexpected_errors(cells):
    """Return ``[(index, error)]`` for cells that raised without the ``raises-exception`` tag,
    and for cells that never ran."""
    found = []
    for cell in cells:
        tagged = "raises-exception" in cell["tags"]
        if cell["errors"] and not tagged:
            found.append((cell["index"], cell["errors"][0]))
        elif cell["source"].strip() and cell["count"] is None:
            found.append((cell["index"], "did not run (the run stopped before it)"))
    return found

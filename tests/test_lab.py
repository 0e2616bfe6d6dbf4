"""The JupyterLab experience: lessons run through JupyterLab's own UI in a real Chromium.

03_gpu_offload is the lightest lesson with both an ipywidgets control and a plot, in both
tracks. Each lesson is copied, without its stored outputs, into a scratch folder, so that what
the browser sees was produced by this run and nothing in the checkout changes.
"""

import subprocess
import sys
import time

import nbformat
import pytest

from conftest import ROOT
from course_tools import jupyterlab, notebooks
from course_utils import browser
from course_utils.errors import CourseError

LESSON = "03_gpu_offload"
NO_BROWSER = browser.why_unavailable()
needs_browser = pytest.mark.skipif(
    NO_BROWSER is not None,
    reason=f"JupyterLab browser test skipped: {NO_BROWSER}",
)


# ---------------------------------------------------------------- the server, without a browser


def test_the_server_listens_on_localhost_with_a_token_and_its_own_settings(tmp_path):
    cmd = jupyterlab.command(tmp_path, 8999, "secret", tmp_path / "cfg", python="py")
    assert cmd[:4] == ["py", "-m", "jupyter", "lab"]
    assert {"--ip=127.0.0.1", "--port=8999", "--port-retries=0", "--no-browser"} <= set(cmd)
    assert "--IdentityProvider.token=secret" in cmd and f"--ServerApp.root_dir={tmp_path}" in cmd
    assert "--LabApp.expose_app_in_browser=True" in cmd and "--LabApp.news_url=None" in cmd
    jupyterlab.write_settings(tmp_path / "cfg")
    tracker = tmp_path / "cfg/settings/@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
    assert '"windowingMode": "none"' in tracker.read_text()


def spawn_tree():
    """Start a process with a child (like a server with a kernel); return the parent Popen."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 20
    while len(jupyterlab.process_tree(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def test_stop_ends_the_whole_process_tree_even_when_shutdown_fails():
    process = spawn_tree()
    tree = jupyterlab.process_tree(process.pid)
    assert len(tree) == 2

    def shutdown():
        raise OSError("the server does not answer")

    assert jupyterlab.stop(process, tree, grace=0.5, shutdown=shutdown) == []
    assert jupyterlab.alive(tree) == [] and process.poll() is not None


def test_a_server_that_fails_to_start_is_reported_and_nothing_is_left(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no jupyter here' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(CourseError, match="(?s)exited with status 3.*no jupyter here"):
        with jupyterlab.lab_server(tmp_path, python=str(fake), timeout=30):
            pass


def test_unexpected_errors_allow_only_tagged_cells():
    cells = [
        {"index": 1, "source": "x", "tags": [], "count": 1, "errors": []},
        {"index": 2, "source": "y", "tags": ["raises-exception"], "count": 2, "errors": ["E: e"]},
        {"index": 3, "source": "z", "tags": [], "count": 3, "errors": ["ValueError: v"]},
        {"index": 4, "source": "w", "tags": [], "count": None, "errors": []},
        {"index": 5, "source": "", "tags": [], "count": None, "errors": []},
    ]
    assert jupyterlab.unexpected_errors(cells) == [
        (3, "ValueError: v"),
        (4, "did not run (the run stopped before it)"),
    ]


# ---------------------------------------------------------------- lessons through the UI


def copy_without_outputs(source, target):
    """Copy a notebook with its outputs and execution counts removed; return the target."""
    nb = notebooks.read(source)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))
    return target


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The course's JupyterLab serving copies of the lessons; checks on exit that it stopped."""
    folder = tmp_path_factory.mktemp("lab")
    for track in notebooks.TRACKS:
        path = f"notebooks/{LESSON}/{track}.ipynb"
        copy_without_outputs(ROOT / path, folder / path)
    work = tmp_path_factory.mktemp("work")
    start = time.perf_counter()
    with jupyterlab.lab_server(folder, env={"COURSE_WORKDIR": str(work)}) as server:
        print(f"JupyterLab ready in {time.perf_counter() - start:.1f} s")
        yield server
    assert server.tree, "the server's processes were recorded"
    assert jupyterlab.alive(server.tree) == [], "JupyterLab or a kernel is still running"


@pytest.fixture(scope="module")
def chrome():
    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def started(lab, chrome):
    """Both lessons opened in JupyterLab and started with Run > Run All Cells, so that one
    kernel runs while the other notebook loads; yields ``{track: page}``."""
    pages = {}
    try:
        for track in notebooks.TRACKS:
            pages[track] = chrome.new_page(viewport={"width": 1400, "height": 1000})
            jupyterlab.open_notebook(pages[track], lab, f"notebooks/{LESSON}/{track}.ipynb")
            jupyterlab.run_all(pages[track])
        yield pages
    finally:
        for page in pages.values():
            page.close()


@needs_browser
@pytest.mark.parametrize("track", notebooks.TRACKS)
def test_a_lesson_runs_in_jupyterlab_with_a_working_widget_and_plots(started, track):
    page = started[track]
    start = time.perf_counter()
    cells = jupyterlab.wait_until_run(page, timeout=300)
    print(f"{track}: ran through the UI ({time.perf_counter() - start:.1f} s more)")

    # every cell ran, and only the cells tagged raises-exception show an error
    assert jupyterlab.unexpected_errors(cells) == []
    tagged = [c for c in cells if "raises-exception" in c["tags"]]
    assert tagged and all(c["errors"] for c in tagged)
    shown = page.locator(".jp-CodeCell .jp-OutputArea-output").count()
    assert shown >= len([c for c in cells if c["types"]])

    # the plots render
    images = page.locator(".jp-CodeCell .jp-OutputArea-output img")
    assert images.count() >= 1
    sizes = images.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
    assert all(width > 100 for width in sizes), sizes

    # the slider renders, and moving it changes the output below it
    slider = page.locator(".jp-OutputArea-output .widget-slider").first
    slider.scroll_into_view_if_needed()
    output = page.locator(".jp-OutputArea-output .widget-output").first
    readout = slider.locator(".widget-readout")
    before_value, before_text = readout.inner_text(), output.inner_text()
    assert before_text.strip() == ""
    handle = slider.locator(".noUi-handle").bounding_box()
    rail = slider.locator(".noUi-target").bounding_box()
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(rail["x"] + rail["width"] * 0.8, y, steps=8)
    page.mouse.up()
    value = readout.inner_text()
    assert value != before_value
    page.wait_for_function(
        "([el, n]) => el.innerText.includes(`n=${n}:`)",
        arg=[output.element_handle(), value],
        timeout=60_000,
    )

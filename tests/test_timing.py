"""Where the time goes (course_tools.timing, test_timing) and who runs beside whom in course run."""

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat.v4 as nbf

from course_tools import notebooks, runner, test_timing, timing


def notebook(path, *sources, durations=None, total=None):
    nb = nbf.new_notebook(cells=[nbf.new_code_cell(s) for s in sources])
    for cell, seconds in zip(nb.cells, durations or [], strict=False):
        cell.metadata["papermill"] = {"duration": seconds}
    if total is not None:
        nb.metadata["papermill"] = {"duration": total}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def test_a_cell_is_filed_under_what_its_code_does():
    assert timing.kind_of("results = claims_worker.measure(plan)") == "worker processes"
    assert timing.kind_of("workers = cu.distributed.TFWorkers(2)") == "worker processes"
    assert timing.kind_of("step = torch.compile(step)") == "compilation"
    assert timing.kind_of("cu.bench.benchmark(work)") == "measurement"
    assert timing.kind_of("history = model.fit(X, y)") == "training"
    assert timing.kind_of("import tensorflow as tf") == "imports"
    assert timing.kind_of("x = 1 + 1") == timing.OTHER


def test_only_notebooks_that_time_nothing_may_share_the_cores(tmp_path):
    assert timing.times_something(notebook(tmp_path / "a.ipynb", "t = time.perf_counter()"))
    assert timing.times_something(notebook(tmp_path / "b.ipynb", 'cu.speed_settings("torch")'))
    assert not timing.times_something(notebook(tmp_path / "c.ipynb", "x = 1"))


def test_the_run_summary_names_the_slowest_notebooks_cells_and_kernel_start_up(tmp_path):
    path = notebook(
        tmp_path / "run.ipynb",
        "import torch",
        "model.fit(X, y)",
        "x = 1",
        durations=[2.0, 7.5, 0.1],
        total=12.0,
    )
    entry = notebooks.Entry("notebooks", "05_training", "pytorch", path)
    outcome = runner.Outcome(entry, path, 12.3, True)
    text = timing.run_summary([outcome])
    assert "12.3 s  notebooks/05_training/pytorch" in text
    # kernel start-up: the runner's 12.3 s less the 9.6 s of the cells
    assert "training 8 s" in text and "kernel start-up 3 s" in text and "imports 2 s" in text
    assert text.index("model.fit") < text.index("import torch"), "slowest cell first"


def test_run_all_runs_untimed_notebooks_side_by_side_and_timed_ones_alone(tmp_path, monkeypatch):
    paths = [
        notebook(tmp_path / "n0.ipynb", "x = 0"),
        notebook(tmp_path / "n1.ipynb", "x = 1"),
        notebook(tmp_path / "n2.ipynb", "t = time.perf_counter()"),
        notebook(tmp_path / "n3.ipynb", "x = 3"),
        notebook(tmp_path / "n4.ipynb", "x = 4"),
    ]
    entries = [notebooks.Entry("notebooks", f"0{i}_x", "pytorch", p) for i, p in enumerate(paths)]
    lock, active, seen = threading.Lock(), [0], {}

    def fake_execute(entry, target, **kwargs):
        with lock:
            active[0] += 1
            seen[entry.path.name] = active[0]
        assert Path(runner.os.environ["COURSE_WORKDIR"]).name == "work"  # set for every kernel
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return runner.Outcome(entry, target, 0.3, True)

    monkeypatch.setattr(runner, "execute", fake_execute)
    monkeypatch.delenv("COURSE_WORKDIR", raising=False)
    outcomes = runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=2)
    assert [o.entry.path for o in outcomes] == paths
    assert seen["n2.ipynb"] == 1, "a notebook that times something runs alone"
    assert max(seen[n] for n in ("n0.ipynb", "n1.ipynb")) == 2
    assert max(seen[n] for n in ("n3.ipynb", "n4.ipynb")) == 2
    assert "COURSE_WORKDIR" not in runner.os.environ, "the run's environment is put back"
    seen.clear()
    runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=1)
    assert set(seen.values()) == {1}


def test_the_test_summary_adds_up_files_and_names_nbval_cells(tmp_path, monkeypatch):
    path = notebook(tmp_path / "nb.ipynb", "import torch", "step = torch.compile(step)")
    monkeypatch.setattr(test_timing, "_DURATIONS", test_timing.defaultdict(float))
    monkeypatch.setattr(test_timing, "_SETUP", test_timing.defaultdict(float))
    reports = [
        (f"{path}::Cell 0", "setup", 3.0),
        (f"{path}::Cell 0", "call", 1.0),
        (f"{path}::Cell 1", "call", 9.0),
        ("tests/test_x.py::test_y", "call", 2.0),
    ]
    for nodeid, when, seconds in reports:
        test_timing.pytest_runtest_logreport(
            SimpleNamespace(nodeid=nodeid, when=when, duration=seconds)
        )
    lines = "\n".join(test_timing.summary())
    assert f"13.0 s  {path}" in lines
    assert "compilation 9 s" in lines and "kernel start-up 3 s" in lines
    assert "Cell 1: step = torch.compile(step)" in lines
    assert "2.0 s  tests/test_x.py" in lines

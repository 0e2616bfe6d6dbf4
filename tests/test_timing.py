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
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
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


def test_a_cell_that_times_something_is_known_by_its_code():
    assert timing.timed_cell("t = time.perf_counter()")
    assert timing.timed_cell('cu.speed_settings("torch")')
    assert timing.timed_cell("results = claims_worker.measure(plan)")
    assert not timing.timed_cell("x = 1")


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
    # side by side: the time a notebook waited while another's timed cell ran alone is its own
    waited = runner.Outcome(entry, path, 12.3, True, waits={"start-up": 2.0, 1: 5.0})
    text = timing.run_summary([waited])
    assert "waiting while a timed cell ran alone 7 s" in text
    assert "training 2 s" in text and "kernel start-up 1 s" in text
    assert "2.5 s  notebooks/05_training/pytorch" in text and "cell 1   training" in text


def test_run_all_runs_notebooks_side_by_side_and_sets_the_runs_environment(tmp_path, monkeypatch):
    paths = [notebook(tmp_path / f"n{i}.ipynb", f"x = {i}") for i in range(5)]
    entries = [notebooks.Entry("notebooks", f"0{i}_x", "pytorch", p) for i, p in enumerate(paths)]
    lock, active, seen, gates = threading.Lock(), [0], {}, []

    def fake_execute(entry, target, **kwargs):
        with lock:
            active[0] += 1
            seen[entry.path.name] = active[0]
        assert Path(runner.os.environ["COURSE_WORKDIR"]).name == "work"  # set for every kernel
        assert runner.os.environ["COURSE_CLAIMS_SHARE"].endswith("claims-share")
        gates.append(runner.GATE)
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return runner.Outcome(entry, target, 0.3, True)

    monkeypatch.setattr(runner, "execute", fake_execute)
    monkeypatch.delenv("COURSE_WORKDIR", raising=False)
    monkeypatch.delenv("COURSE_CLAIMS_SHARE", raising=False)
    outcomes = runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=2)
    assert [o.entry.path for o in outcomes] == paths
    assert max(seen.values()) == 2
    assert "COURSE_WORKDIR" not in runner.os.environ, "the run's environment is put back"
    assert runner.GATE is None and len(gates) == 5 and len(set(map(id, gates))) == 1
    assert isinstance(gates[0], runner.Gate), "side by side, timed cells hold a gate"
    seen.clear()
    gates.clear()
    runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=1)
    assert set(seen.values()) == {1} and gates == [None] * 5  # one at a time: no gate


def test_the_gate_lets_a_timed_cell_run_alone_and_first():
    """Shared holds overlap; an alone hold overlaps nothing, and a waiting one goes first."""
    gate = runner.Gate()
    started = threading.Event()

    def hold(alone, seconds, name, log):
        with gate.hold(alone):
            log.append(name)
            started.set()
            time.sleep(seconds)

    order = []
    first = threading.Thread(target=hold, args=(False, 0.4, "shared 1", order))
    first.start()
    started.wait()
    timed = threading.Thread(target=hold, args=(True, 0.2, "timed", order))
    timed.start()
    time.sleep(0.1)  # the timed hold is now waiting for "shared 1" to end
    later = threading.Thread(target=hold, args=(False, 0.1, "shared 2", order))
    later.start()
    for t in (first, timed, later):
        t.join()
    assert order == ["shared 1", "timed", "shared 2"], "a waiting timed cell goes first"
    spans = sorted(gate.log, key=lambda e: e[1])
    alone = [s for s in spans if s[0] == "alone"]
    assert len(alone) == 1 and len(spans) == 3
    _, a0, a1 = alone[0]
    for kind, s0, s1 in spans:
        if kind == "shared":
            assert s1 <= a0 or s0 >= a1, "nothing runs beside a timed cell"
    # without a gate (refresh, tests) a hold is nothing at all
    with runner._held(True):
        pass


def test_the_runner_holds_the_gate_for_kernel_start_up_and_cells(tmp_path, monkeypatch):
    """A real run of two notebooks side by side: the timed cell's span overlaps nothing."""
    paths = [
        notebook(tmp_path / "a.ipynb", "import time\ntime.sleep(0.5)", "y = 2"),
        notebook(tmp_path / "b.ipynb", "import time\nt = time.perf_counter(); time.sleep(0.3)"),
    ]
    entries = [notebooks.Entry("notebooks", f"0{i}_x", "pytorch", p) for i, p in enumerate(paths)]
    gates = []
    real = runner.Gate

    def keep():
        gates.append(real())
        return gates[-1]

    monkeypatch.setattr(runner, "Gate", keep)
    outcomes = runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    log = gates[0].log
    assert sum(kind == "alone" for kind, *_ in log) == 1
    # two start-up steps per notebook; cells: a's two and the parameters papermill adds to each
    assert sum(kind == "shared" for kind, *_ in log) == 2 * 2 + 2 + 2
    (_, a0, a1), *_ = [e for e in log if e[0] == "alone"]
    assert all(s1 <= a0 or s0 >= a1 for kind, s0, s1 in log if kind == "shared")


def test_the_test_summary_adds_up_files_and_names_nbval_cells(tmp_path, monkeypatch):
    path = notebook(tmp_path / "nb.ipynb", "import torch", "step = torch.compile(step)")
    monkeypatch.setattr(test_timing, "_DURATIONS", test_timing.defaultdict(float))
    monkeypatch.setattr(test_timing, "_SETUP", test_timing.defaultdict(float))
    monkeypatch.setattr(test_timing, "_CPU", test_timing.defaultdict(float))
    reports = [
        (f"{path}::Cell 0", "setup", 3.0, []),
        (f"{path}::Cell 0", "call", 1.0, []),
        (f"{path}::Cell 0", "teardown", 0.0, [("cpu_s", 1.5)]),
        (f"{path}::Cell 1", "call", 9.0, []),
        (f"{path}::Cell 1", "teardown", 0.0, [("cpu_s", 4.25)]),
        ("tests/test_x.py::test_y", "call", 2.0, []),
        ("tests/test_x.py::test_y", "teardown", 0.0, [("cpu_s", 2.0)]),
    ]
    for nodeid, when, seconds, properties in reports:
        test_timing.pytest_runtest_logreport(
            SimpleNamespace(nodeid=nodeid, when=when, duration=seconds, user_properties=properties)
        )
    lines = "\n".join(test_timing.summary())
    # wall seconds (waiting included), then the CPU seconds the worker and its children used
    assert f"13.0 s     5.8 cpu s  {path}" in lines
    assert "CPU seconds in all, per file: 8 s; " in lines
    files = test_timing.per_file()
    assert list(files) == [str(path), "tests/test_x.py"], "most CPU first"
    assert files[str(path)]["cpu_s"] == 5.75 and files[str(path)]["wall_s"] == 13.0
    assert files[str(path)]["spent"] == {"kernel start-up": 3.0, "imports": 1.0, "compilation": 9.0}
    assert "compilation 9 s" in lines and "kernel start-up 3 s" in lines
    assert "Cell 1: step = torch.compile(step)" in lines
    assert "2.0 s  tests/test_x.py" in lines


def test_a_test_carries_the_cpu_its_worker_and_children_used(pytester, monkeypatch, root):
    monkeypatch.setenv("PYTHONPATH", str(root))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the plugin under test
    pytester.makepyfile(
        """
        import subprocess, sys

        def test_child():
            subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "course_tools.test_timing", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    (line,) = [x for x in text.splitlines() if "test_a_test_carries" in x and "cpu s" in x]
    assert float(line.split("s")[1].split()[0]) > 0.0, line


def test_the_longest_files_start_first_and_unknown_ones_before_them(tmp_path, monkeypatch):
    from course_tools import test_order

    items = [
        SimpleNamespace(nodeid=n)
        for n in [
            "tests/test_a.py::test_1",
            "tests/test_a.py::test_2",
            "notebooks/09/pytorch.ipynb::Cell 0",
            "notebooks/09/pytorch.ipynb::Cell 1",
            "tests/test_new.py::test_1",
            "tests/test_b.py::test_1",
        ]
    ]
    known = {"tests/test_a.py": 5.0, "notebooks/09/pytorch.ipynb": 130.0, "tests/test_b.py": 40.0}
    ordered = [i.nodeid for i in test_order.longest_first(items, known)]
    assert ordered == [
        "tests/test_new.py::test_1",  # unknown: it may be long
        "notebooks/09/pytorch.ipynb::Cell 0",
        "notebooks/09/pytorch.ipynb::Cell 1",  # a file's tests keep their order
        "tests/test_b.py::test_1",
        "tests/test_a.py::test_1",
        "tests/test_a.py::test_2",
    ]
    # the committed durations, updated by the last run's own (course_tools.test_timing's file)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "durations.json").write_text('{"a.py": 3.0, "b.py": 9.0}')
    last = tmp_path / "times.json"
    last.write_text(
        '{"a.py": {"wall_s": 12.5, "cpu_s": 4.0}, "c.py": {"wall_s": "?"},'
        ' "twin.ipynb": {"wall_s": 195.0, "cpu_s": 9.0}, "nb.ipynb": {"wall_s": 74.0, "cpu_s": 41.0}}'
    )
    monkeypatch.setenv("COURSE_TEST_TIMES", str(last))
    # a test module's own waits count; a notebook that mostly waited for another (the claims
    # lab's second twin) weighs at most twice its CPU time
    assert test_order.durations(tmp_path) == {
        "a.py": 12.5,
        "b.py": 9.0,
        "twin.ipynb": 18.0,
        "nb.ipynb": 74.0,
    }
    last.write_text("not json")
    assert test_order.durations(tmp_path) == {"a.py": 3.0, "b.py": 9.0}


def test_the_real_course_has_durations_for_its_test_files(root):
    from course_tools import test_order

    known = test_order._read(root / test_order.COMMITTED)
    files = [*root.glob("tests/test_*.py"), *root.glob("notebooks/*/*.ipynb")]
    missing = [p for p in files if p.relative_to(root).as_posix() not in known]
    assert len(missing) <= len(files) // 4, f"tests/durations.json is stale: {missing}"


def test_course_durations_updates_the_committed_file_from_a_run(tmp_path):
    from course_tools import cli

    (tmp_path / "tests").mkdir()
    for name in ("tests/test_a.py", "tests/test_b.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "tests" / "durations.json").write_text(
        '{"tests/test_a.py": 3.0, "tests/test_b.py": 9.0, "tests/test_gone.py": 1.0}'
    )
    times = tmp_path / "times.json"
    times.write_text('{"tests/test_a.py": {"wall_s": 12.345, "cpu_s": 4.0}}')
    args = SimpleNamespace(times="times.json")
    assert cli.cmd_durations(args, tmp_path) == 0
    saved = json.loads((tmp_path / "tests" / "durations.json").read_text())
    # the run's figure; a file the run did not see keeps its own; a deleted file is dropped
    assert saved == {
        "tests/test_a.py": {"wall_s": 12.3, "cpu_s": 4.0},
        "tests/test_b.py": {"wall_s": 9.0},
    }
    missing = SimpleNamespace(times="nothing.json")
    try:
        cli.cmd_durations(missing, tmp_path)
    except cli.CourseError as err:
        assert "run `python3 course.py test` first" in str(err)
    else:
        raise AssertionError("a missing times file must be an error")


def test_notebooks_side_by_side_each_run_in_their_own_folder(tmp_path):
    """papermill's ``cwd`` changes this process's directory around a run: two runs in two
    threads restored each other's, so a kernel could start in the other's folder and the
    process stay in one. The runner gives each kernel its folder instead."""
    import os

    code = "import os, time\ntime.sleep(0.5)\nprint(os.getcwd())"
    paths = [notebook(tmp_path / f"n{i}.ipynb", code) for i in range(2)]
    entries = [notebooks.Entry("notebooks", f"0{i}_x", "pytorch", p) for i, p in enumerate(paths)]
    before = os.getcwd()
    outcomes = runner.run_all(tmp_path, entries, tmp_path / "out", progress=False, jobs=2)
    assert os.getcwd() == before
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        nb = json.loads(Path(outcome.output).read_text())
        printed = "".join(nb["cells"][-1]["outputs"][0]["text"]).strip()
        assert printed == str(Path(outcome.output).parent)

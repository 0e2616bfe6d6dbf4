"""The command-line runner: clear messages and status 2 for bad input; runs, reports, summaries."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, course, write_nb


def test_unknown_concept_exits_2_with_the_known_names(scratch):
    result = course("run", "--only", "99_nope", cwd=scratch)
    assert result.returncode == 2
    assert "unknown concept '99_nope'" in result.stderr
    assert "01_demo" in result.stderr


def test_bad_selection_syntax_exits_2(scratch):
    result = course("run", "--only", "01/keras", cwd=scratch)
    assert result.returncode == 2
    assert "cannot read '01/keras'" in result.stderr


def test_missing_twin_notebook_exits_2(scratch):
    (scratch / "notebooks" / "01_demo" / "tensorflow.ipynb").unlink()
    result = course("run", cwd=scratch)
    assert result.returncode == 2
    assert "missing notebook: notebooks/01_demo/tensorflow.ipynb" in result.stderr


def test_malformed_notebook_exits_2_naming_the_file(scratch):
    (scratch / "notebooks" / "01_demo" / "pytorch.ipynb").write_text("{ not json")
    result = course("run", cwd=scratch)
    assert result.returncode == 2
    assert "pytorch.ipynb: not a valid notebook" in result.stderr


def test_outside_a_checkout_exits_2(tmp_path):
    result = course("list", cwd=tmp_path)
    assert result.returncode == 2
    assert "needs the course repository" in result.stderr


def test_run_writes_executed_copies_records_and_report(scratch):
    result = course("run", "--no-progress", cwd=scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    out = scratch / "build" / "run"
    assert (out / "notebooks" / "01_demo" / "pytorch.ipynb").is_file()
    records = json.loads((out / "records.json").read_text())
    assert {(r["track"], r["name"], r["value"]) for r in records} == {
        ("pytorch", "answer", 42),
        ("tensorflow", "answer", 42),
    }
    report = (out / "report.md").read_text()
    assert "| 01_demo | answer |  | 42 | 42 |" in report
    assert "| notebooks/01_demo/pytorch | ok |" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["mode"] == "quick"
    assert all(n["waited"] >= 0 for n in summary["notebooks"])  # behind another's timed cell
    # the source notebooks were not touched
    assert '"execution_count": null' in (scratch / "notebooks/01_demo/pytorch.ipynb").read_text()


def test_full_mode_reaches_the_parameters_cell(scratch):
    result = course("run", "--no-progress", "--full", "--only", "pytorch", cwd=scratch)
    assert result.returncode == 0, result.stderr
    executed = (scratch / "build/run/notebooks/01_demo/pytorch.ipynb").read_text()
    assert "full" in executed
    assert not (scratch / "build/run/notebooks/01_demo/tensorflow.ipynb").exists()


def test_failure_summary_names_notebook_and_cell_and_exits_1(scratch):
    write_nb(
        scratch / "notebooks" / "01_demo" / "pytorch.ipynb",
        [
            ("code", "quick = True", ["parameters"]),
            ("code", "1 / 0", ["raises-exception"]),  # meant to raise: fine
            ("code", "x = 1"),
            ("code", "raise ValueError('broken on purpose')"),  # not meant to raise
        ],
    )
    result = course("run", "--no-progress", "--only", "01", cwd=scratch)
    assert result.returncode == 1
    assert "1 of 2 notebook(s) failed" in result.stdout
    assert "notebooks/01_demo/pytorch.ipynb: cell 3" in result.stdout
    assert "ValueError: broken on purpose" in result.stdout
    assert "FAILED" in (scratch / "build/run/report.md").read_text()


def test_a_cell_tagged_raises_exception_does_not_fail_the_run(scratch):
    write_nb(
        scratch / "notebooks" / "01_demo" / "pytorch.ipynb",
        [("code", "quick = True", ["parameters"]), ("code", "1 / 0", ["raises-exception"])],
    )
    result = course("run", "--no-progress", "--only", "01/pytorch", cwd=scratch)
    assert result.returncode == 0, result.stdout
    executed = (scratch / "build/run/notebooks/01_demo/pytorch.ipynb").read_text()
    assert "ZeroDivisionError" in executed
    assert "papermill-error-cell-tag" not in executed


def test_widget_output_goes_to_the_cell_and_nothing_is_sent_to_the_kernel(scratch):
    # The course's engine does not mimic the Output widget (see runner._engine): what the
    # interact function shows is stored in the cell, and the kernel receives no comm_msg from
    # the runner (the kernel-side widget counts them).
    write_nb(
        scratch / "notebooks" / "01_demo" / "pytorch.ipynb",
        [
            ("code", "quick = True", ["parameters"]),
            (
                "code",
                "import ipywidgets as widgets\n"
                "out = widgets.Output()\n"
                "received = []\n"
                "out.observe(lambda change: received.append(change), names='outputs')\n"
                "with out:\n"
                "    print('shown inside the widget')\n"
                "out",
            ),
            ("code", "print('updates from the front end:', len(received))"),
        ],
    )
    result = course("run", "--no-progress", "--only", "01/pytorch", cwd=scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    executed = json.loads((scratch / "build/run/notebooks/01_demo/pytorch.ipynb").read_text())

    def printed(marker):
        (cell,) = [c for c in executed["cells"] if marker in "".join(c["source"])]
        return "".join("".join(o.get("text", [])) for o in cell["outputs"])

    assert printed("with out:") == "shown inside the widget\n"
    assert printed("updates from the front end") == "updates from the front end: 0\n"


def test_refresh_stores_outputs_in_place_without_volatile_metadata(scratch):
    result = course("refresh", "--set", "notebooks", "--only", "01/pytorch", cwd=scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (scratch / "notebooks/01_demo/pytorch.ipynb").read_text()
    assert "[recorded] answer = 42" in text
    assert '"papermill"' not in text and "iopub.execute_input" not in text


def test_list_shows_the_concepts(root):
    result = course("list", cwd=root)
    assert result.returncode == 0
    assert "00_setup: notebooks/pytorch, notebooks/tensorflow" in result.stdout


def test_doctor_json_runs_without_importing_frameworks(root):
    result = course("doctor", "--frameworks", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["packages"]["torch"].startswith("2.")
    assert "torch" not in report  # no framework was probed


def test_doctor_from_a_shell_prints_no_tensorflow_log_lines(root):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KMP_", "GRPC_"))}
    result = subprocess.run(
        [sys.executable, "-m", "course_tools", "doctor"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "CPU ISA" in result.stdout and "oneDNN custom ops on" in result.stdout


def test_unknown_framework_in_doctor_exits_2(root):
    result = course("doctor", "--frameworks", "jax", cwd=root)
    assert result.returncode == 2
    assert "unknown framework 'jax'" in result.stderr


def test_new_scaffolds_four_notebooks_and_refuses_to_overwrite(scratch):
    result = course("new", "02_extra", "--title", "Extra", "--section", "1. One", cwd=scratch)
    assert result.returncode == 0, result.stderr
    for s in ("notebooks", "solutions"):
        for t in ("pytorch", "tensorflow"):
            assert (scratch / s / "02_extra" / f"{t}.ipynb").is_file()
    again = course("new", "02_extra", "--title", "Extra", cwd=scratch)
    assert again.returncode == 2 and "not overwriting" in again.stderr
    bad = course("new", "Extra", "--title", "Extra", cwd=scratch)
    assert bad.returncode == 2 and "must look like NN_name" in bad.stderr


def _course_py():
    """course.py, the standard-library script, loaded as a module (its main() is not run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_says_whether_a_budget_is_met_and_the_least_time_its_work_can_take():
    script = _course_py()
    # (wall s, setup s, peak bytes, status, CPU s): the test command's budget includes setup
    rows = [(752.0, 68.0, 0, 0, 1300.0), (748.0, 61.0, 0, 0, 1250.0)]
    lines = script.budget_lines("test", rows, 2)
    assert lines[0] == (
        "test: the test command, setup included, median 750 s; budget 600 s: not met, by 150 s"
    )
    assert "1275 s of CPU" in lines[1] and "cannot take less than 638 s" in lines[1]
    # the main job's budget does not include setup; without CPU figures, no second line
    assert script.budget_lines("run", [(300.0, 70.0, 0, 0, None)], 2) == [
        "run: the main job, after setup, median 230 s; budget 240 s: met"
    ]


def test_the_machines_cpu_seconds_grow_with_work():
    script = _course_py()
    before = script.machine_cpu_seconds()
    if before is None:
        pytest.skip("no /proc/stat here")
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert script.machine_cpu_seconds() - before >= 0.25

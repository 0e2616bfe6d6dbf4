"""instructor.ipynb runs headless on a CPU (quick mode, one lesson) and shows what it promises."""

import json

import nbformat
import pytest

from conftest import ROOT
from course_tools import instructor, stamp, template

NOTEBOOK = ROOT / "instructor.ipynb"


def outputs(nb):
    """Return every text and markdown output of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            data = out.get("data", {})
            parts += [data[k] for k in ("text/markdown", "text/plain") if k in data]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import papermill

    base = tmp_path_factory.mktemp("instructor")
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(base / "instructor.ipynb"),
        parameters={"concepts": ["00_setup/pytorch"], "quick": True, "out": str(base / "run")},
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    return nbformat.read(str(base / "instructor.ipynb"), as_version=4), base / "run"


def test_it_prints_the_doctor_and_the_device_it_chose(executed):
    text = outputs(executed[0])
    assert "logical cores" in text and "PyTorch    2." in text and "TensorFlow 2." in text
    assert "device for every notebook: 'cpu' (no GPU or TPU on this runtime" in text


def test_it_runs_the_chosen_lessons_and_writes_the_report(executed):
    nb, run = executed
    summary = json.loads((run / "summary.json").read_text())
    assert [n["notebook"] for n in summary["notebooks"]] == ["notebooks/00_setup/pytorch"]
    assert summary["failed"] == 0 and summary["mode"] == "quick"
    assert (run / "notebooks" / "00_setup" / "pytorch.ipynb").is_file()
    text = outputs(nb)
    assert "| notebooks/00_setup/pytorch | ok |" in text
    assert "| 00_setup | train_size |  | 1257 |" in text  # a record, shown inline
    assert "All 1 notebook(s) ran on 'cpu'." in text
    assert "$ course run --no-progress --device cpu" in text  # the command, as it ran
    assert "KeyboardInterrupt" not in text and "[IPKernelApp]" not in text  # kernels' logs: a file
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_it_is_honest_about_the_accelerator_paths(executed):
    text = outputs(executed[0])
    assert "This runtime has no GPU or TPU" in text and "CI runs only this way" in text
    assert "| 03_gpu_offload | crossover_size |" in text and "not in this run" in text


def test_the_notebook_is_committed_clean_and_points_at_the_repository():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    assert all(not c.outputs for c in nb.cells if c.cell_type == "code")
    assert template.colab_link("instructor.ipynb") in nb.cells[0].source
    assert stamp.verify(ROOT) == []
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "quick = True" in params[0].source


@pytest.mark.parametrize(
    "seen, requested, device",
    [
        ({"torch": ["cuda", "cpu"], "tensorflow": ["cuda", "cpu"]}, "auto", "cuda"),
        ({"torch": ["cpu"], "tensorflow": ["tpu", "cpu"]}, "auto", "auto"),
        ({"torch": ["cpu"], "tensorflow": ["cpu"]}, "auto", "cpu"),
        ({"torch": ["cpu"], "tensorflow": ["cpu"]}, "cuda", "cuda"),
    ],
)
def test_the_device_is_the_accelerator_both_frameworks_can_use(seen, requested, device):
    report = {name: {"available": kinds} for name, kinds in seen.items()}
    assert instructor.choose_device(report, requested)[0] == device


def test_accelerator_figures_are_listed_even_when_not_measured():
    rows = instructor.accelerator_rows(
        [{"concept": "03_gpu_offload", "name": "crossover_size", "track": "pytorch", "value": 512}]
    )
    by_name = {(c, n): (pt, tf) for c, n, _, pt, tf in rows}
    assert by_name[("03_gpu_offload", "crossover_size")] == (512, None)
    assert by_name[("05_training", "train_accelerator_peak")] == (None, None)


def test_the_course_run_command_carries_the_notebooks_parameters():
    command = instructor.course_run_command(
        "00_setup, 03", "notebooks solutions", quick=False, device="cuda", out="o", timeout=9
    )
    assert command[1:4] == ["-m", "course_tools", "run"]
    text = " ".join(command[4:])
    assert "--device cuda" in text and "--out o" in text and "--timeout 9" in text
    assert "--set notebooks solutions" in text and "--only 00_setup 03" in text
    assert command[-1] == "--full"

"""The cross-CPU pass's notebooks are chosen by a rule on their stored outputs (cross_cpu)."""

import json
import os
import subprocess
import sys

import nbformat.v4 as nbf

from conftest import ROOT
from course_tools import cross_cpu


def stored(path, cells):
    """Write a notebook of ``(source, outputs, tags)`` code cells."""
    nb = nbf.new_notebook()
    for source, outputs, tags in cells:
        cell = nbf.new_code_cell(source, outputs=outputs)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def printed(text):
    return nbf.new_output("stream", name="stdout", text=text)


def record(name, value):
    data = {cross_cpu.RECORD: {"name": name, "value": value}, "text/plain": f"{name}"}
    return nbf.new_output("display_data", data=data)


def test_a_float_at_float32s_last_digits_or_from_compiled_code_makes_a_notebook_cpu_dependent(
    tmp_path,
):
    long = stored(tmp_path / "a.ipynb", [("print(x)", [printed("loss 0.698821\n")], [])])
    assert cross_cpu.reasons(long) == [(0, "prints 0.698821 (6+ significant digits)")]
    short = stored(tmp_path / "b.ipynb", [("print(x)", [printed("loss 0.6988, 2.0\n")], [])])
    assert cross_cpu.reasons(short) == []
    ignored = stored(
        tmp_path / "c.ipynb", [("print(x)", [printed("0.698821\n")], ["nbval-ignore-output"])]
    )
    assert cross_cpu.reasons(ignored) == []
    rounding = stored(
        tmp_path / "r.ipynb", [("print(gap)", [printed("weights differ by 1.5e-08\n")], [])]
    )
    assert cross_cpu.reasons(rounding) == [(0, "prints 1.5e-08 (float32 rounding's size)")]
    sized = stored(  # a zero, a threshold and a difference above rounding: the same everywhere
        tmp_path / "s.ipynb", [("print(gap)", [printed("0.0e+00 below 1e-05, 3.3e-02\n")], [])]
    )
    assert cross_cpu.reasons(sized) == []
    version = stored(tmp_path / "d.ipynb", [("print(v)", [printed("torch 2.13.0123\n")], [])])
    assert cross_cpu.reasons(version) == []
    compiled = stored(
        tmp_path / "e.ipynb",
        [
            ("f = torch.compile(model)\nprint(f(x))", [printed("2.5\n")], []),
            ("g = torch.compile(model)", [record("diff", 1e-7)], []),
            ("h = model(x)", [record("plain", 0.125)], []),  # no compiled code: its tolerance
        ],
    )
    assert cross_cpu.reasons(compiled) == [
        (0, "prints 2.5 from compiled code"),
        (1, "record diff from compiled code"),
    ]


def test_the_selection_takes_each_notebook_with_such_floats_and_not_its_twin(tmp_path):
    stored(tmp_path / "notebooks/01_a/pytorch.ipynb", [("print(x)", [printed("1.234567\n")], [])])
    stored(tmp_path / "notebooks/01_a/tensorflow.ipynb", [("print(x)", [printed("ok\n")], [])])
    stored(tmp_path / "notebooks/02_b/pytorch.ipynb", [("print(x)", [printed("0.5\n")], [])])
    stored(tmp_path / "solutions/01_a/pytorch.ipynb", [("check()", [printed("solved\n")], [])])
    assert cross_cpu.select(tmp_path) == ["notebooks/01_a/pytorch.ipynb"]
    assert cross_cpu.last_cell(tmp_path / "notebooks/01_a/pytorch.ipynb") == 0
    assert cross_cpu.last_cell(tmp_path / "notebooks/01_a/tensorflow.ipynb") is None


def test_as_a_plugin_it_deselects_the_cells_after_the_last_kernel_dependent_one(tmp_path):
    """nbval collects one item per code cell; the plugin keeps those up to the last cell whose
    compared output the kernels can change, and none of a notebook without one."""
    dependent = stored(
        tmp_path / "a.ipynb",
        [
            ("x = 1", [], []),
            ("print(x)", [printed("1.234567\n")], []),
            ("print('done')", [printed("done\n")], []),
            ("print(2)", [printed("2\n")], []),
        ],
    )
    plain = stored(tmp_path / "b.ipynb", [("print('ok')", [printed("ok\n")], [])])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbval", "-p", "no:xdist"]
        + ["-p", "no:cacheprovider", "-p", "course_tools.cross_cpu", str(dependent), str(plain)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::Cell" in line]
    assert collected == ["a.ipynb::Cell 0", "a.ipynb::Cell 1"], done.stdout
    assert "2/5 tests collected (3 deselected)" in done.stdout
    assert "a.ipynb: cells 0-1 of 4 re-run" in done.stdout
    assert "b.ipynb: none of 1 re-run" in done.stdout


def test_the_real_course_re_executes_its_compiled_and_full_precision_notebooks():
    chosen = cross_cpu.select(ROOT)
    assert chosen, "no notebook of the course prints a CPU-dependent float: the rule is broken"
    for path in chosen:  # each for a reason of its own, up to its last such cell
        assert cross_cpu.last_cell(ROOT / path) is not None
    # 04 compares torch.compile's and XLA's results with eager ones: compiled kernels per CPU
    assert "notebooks/04_eager_vs_compiled/pytorch.ipynb" in chosen
    # a solution's checks compare results computed on the same kernels: never CPU-dependent
    assert not [p for p in chosen if p.startswith("solutions/")]

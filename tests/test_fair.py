"""Fair by construction: both frameworks run at their defaults unless a lesson says otherwise.

A lesson may change a setting that decides speed (a kernel library, the threads, TF32, XLA) only
on purpose: the code cell carries the tag ``changes-speed-settings`` and the markdown cell right
before it names the setting. Every lesson that times something prints the speed settings of its
framework (``cu.speed_settings(...)``), and the stored print shows the kernel libraries on.
"""

import json
import re
from pathlib import Path

import pytest

from course_utils.quiet import ENV, KERNEL_SWITCHES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for folder in ("notebooks", "solutions") for p in (ROOT / folder).glob("*/*.ipynb")
)
TAG = "changes-speed-settings"

# Code that switches a kernel library off or changes the kernels, threads or precision.
SPEED_SETTINGS = [re.escape(name) for name in KERNEL_SWITCHES] + [
    r"torch\.backends\.mkldnn\.enabled\s*=",
    r"torch\.backends\.mkldnn\.flags\(",
    r"torch\._C\._set_mkldnn_enabled",
    r"torch\.set_num_threads\(",
    r"torch\.set_num_interop_threads\(",
    r"torch\.set_float32_matmul_precision\(",
    r"torch\.backends\.cuda\.matmul\.allow_tf32\s*=",
    r"torch\.backends\.cudnn\.allow_tf32\s*=",
    r"fp32_precision\s*=",
    r"tf\.config\.threading\.set_",
    r"tf\.config\.optimizer\.set_jit\(",
    r"tf\.config\.experimental\.enable_tensor_float_32_execution\(",
    r"tf\.config\.optimizer\.set_experimental_options\(",
]
SPEED_RE = re.compile("|".join(SPEED_SETTINGS))
# A cell that times something: the course's bench helpers, any helper named time_*, or a clock.
TIMED_RE = re.compile(
    r"\bcu\.bench\.|\bbench\.(time|measure|compare)|\.time_\w+\(|perf_counter|timeit"
)


def _code(cell):
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _load(path):
    return json.loads(path.read_text())["cells"]


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_quiet_sets_log_levels_only():
    assert not set(ENV) & set(KERNEL_SWITCHES), "quiet() must not change which kernels run"
    assert all(("LOG" in k or "VERBOSITY" in k or "WARNINGS" in k) for k in ENV)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_speed_settings_change_only_on_purpose(path):
    cells = _load(path)
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(
            line for line in _code(cell).splitlines() if not line.lstrip().startswith("#")
        )
        found = SPEED_RE.search(code)
        if not found:
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        assert TAG in tags, (
            f"cell {i} changes a speed setting ({found.group(0)!r}) without the tag {TAG!r}: "
            "run both frameworks at their defaults, or tag the cell and say why before it"
        )
        before = "".join(cells[i - 1]["source"]) if i and cells[i - 1]["cell_type"] else ""
        name = found.group(0).split("(")[0].split("=")[0].strip().split(".")[-1]
        assert cells[i - 1]["cell_type"] == "markdown" and name in before, (
            f"cell {i} changes {name!r}: the markdown cell before it must name it and say why"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_lessons_that_time_print_their_speed_settings(path):
    cells = [c for c in _load(path) if c["cell_type"] == "code"]
    timed = [i for i, c in enumerate(cells) if TIMED_RE.search(_code(c))]
    if not timed:
        pytest.skip("this notebook times nothing")
    shown = [i for i, c in enumerate(cells) if "cu.speed_settings(" in _code(c)]
    assert shown, "a notebook that times work must print cu.speed_settings(...) first"
    assert min(shown) < min(timed), "print the speed settings before the first timing"
    for i in shown:
        text = "".join(
            "".join(o.get("text", "")) for o in cells[i].get("outputs", []) if "text" in o
        )
        if not text:
            continue  # not executed yet (exercise copies)
        assert "kernel switches: none set" in text, text
        assert "oneDNN OFF" not in text and "custom ops OFF" not in text, text


def test_the_settings_print_says_what_it_found():
    import course_utils as cu

    torch_side = cu.cpu.speed_settings("torch")
    text = cu.cpu.format_speed_settings(torch_side)
    assert torch_side["onednn"] is True and "oneDNN on" in text
    assert "kernel switches: none set" in text or torch_side["switches"]
    with pytest.raises(ValueError, match="unknown framework"):
        cu.cpu.speed_settings("jax")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_stored_output_shows_the_onednn_banner(path):
    from course_utils.quiet import IMPORT_BANNERS

    for i, cell in enumerate(_load(path)):
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                assert not any(p.match(line) for p in IMPORT_BANNERS), (
                    f"cell {i} shows TensorFlow's import banner: import TensorFlow after "
                    f"cu.quiet(): {line[:80]}"
                )

"""The course's shape: twin tracks everywhere, mirrored headings, one template, clean files."""

import ast
import re

import pytest

from conftest import ROOT
from course_tools import notebooks, template
from course_utils import checks
from course_utils.records import MIME as RECORD_MIME

CONCEPTS = notebooks.concepts(ROOT)
ALL = [
    (s, c, t, ROOT / s / c / f"{t}.ipynb")
    for s in notebooks.SETS
    for c in CONCEPTS
    for t in notebooks.TRACKS
]
SOURCES = [a for a in ALL if a[0] != "exercises"]
# Concepts whose subject is crossing between the frameworks: their notebooks import both (see
# CONTRIBUTING.md). Every other notebook imports only its own framework.
BOTH_FRAMEWORKS = ("08_interop",)


def ids(params):
    return [f"{s}/{c}/{t}" for s, c, t, _ in params]


def test_there_are_concepts():
    assert "00_setup" in CONCEPTS


@pytest.mark.parametrize("set_name", notebooks.SETS)
def test_every_concept_has_both_tracks_in_every_set(set_name):
    missing = [
        f"{set_name}/{c}/{t}.ipynb"
        for c in CONCEPTS
        for t in notebooks.TRACKS
        if not (ROOT / set_name / c / f"{t}.ipynb").is_file()
    ]
    assert missing == []
    extra = sorted(
        p.name for p in (ROOT / set_name).iterdir() if p.is_dir() and p.name not in CONCEPTS
    )
    assert extra == [], f"{set_name}/ has concepts that notebooks/ lacks"


@pytest.mark.parametrize("set_name", notebooks.SETS)
@pytest.mark.parametrize("concept", CONCEPTS)
def test_twin_notebooks_have_identical_section_headings(set_name, concept):
    pt, tf = (
        notebooks.headings(notebooks.read(ROOT / set_name / concept / f"{t}.ipynb"))
        for t in notebooks.TRACKS
    )
    assert pt == tf
    assert pt[0] == "## Setup" and "## Summary" in pt and pt[-1] == "## Next"


@pytest.mark.parametrize("set_name, concept, track, path", ALL, ids=ids(ALL))
def test_header_has_title_badge_and_twin_link(set_name, concept, track, path):
    first = notebooks.read(path).cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {concept[:2]} · ")
    assert template.colab_url(set_name, concept, track) in first.source
    assert f"]({template.twin(track)}.ipynb)" in first.source
    assert "**You will learn**" in first.source


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("set_name, concept, track, path", ALL, ids=ids(ALL))
def test_setup_cells_follow_the_template(set_name, concept, track, path):
    nb = notebooks.read(path)
    source = "\n".join(c.source for c in _code(nb))
    assert '"google.colab" in sys.modules' in source
    framework_import = template.FRAMEWORK_IMPORTS[track]
    assert source.index("cu.quiet()") < source.index(framework_import)
    other = template.FRAMEWORK_IMPORTS[template.twin(track)]
    if concept in BOTH_FRAMEWORKS:
        assert other in source, f"{concept} crosses between the frameworks: it imports both"
        assert source.index(framework_import) < source.index(other), "its own framework first"
    else:
        assert other not in source, "a notebook imports only its own framework"
    assert f'cu.recorder("{concept}", "{track}")' in source
    params = notebooks.parameters_cell(nb)
    assert params is not None, "no cell tagged 'parameters'"
    names = {t.id for node in ast.parse(params.source).body for t in getattr(node, "targets", [])}
    assert {"quick", "seed", "device"} <= names
    assert re.search(r"^quick = True", params.source, re.M), "quick mode is the default"


CLAIMS_LAB = "09_claims_lab"  # the one concept whose twins both measure both frameworks
CLAIMS_SIDES = {"pytorch": "claims_torch", "tensorflow": "claims_tf"}


@pytest.mark.skipif(CLAIMS_LAB not in CONCEPTS, reason="no claims lab in this checkout")
@pytest.mark.parametrize("track", notebooks.TRACKS)
def test_the_claims_lab_twins_run_one_harness_and_show_their_own_side(track):
    """The exception CONTRIBUTING.md describes: both twins measure both frameworks through the
    harness's child processes, and each shows only its own framework's experiment code."""
    nb = notebooks.read(ROOT / "notebooks" / CLAIMS_LAB / f"{track}.ipynb")
    source = "\n".join(c.source for c in _code(nb))
    assert source.count("claims_worker.measure(") == 1
    assert CLAIMS_SIDES[track] in source
    assert CLAIMS_SIDES[template.twin(track)] not in source


@pytest.mark.parametrize("set_name, concept, track, path", ALL, ids=ids(ALL))
def test_no_volatile_metadata(set_name, concept, track, path):
    text = path.read_text()
    for key in ('"papermill"', "iopub.execute_input", '"ExecuteTime"', "widget-view+json"):
        assert key not in text


@pytest.mark.parametrize("set_name, concept, track, path", SOURCES, ids=ids(SOURCES))
def test_source_notebooks_are_committed_executed(set_name, concept, track, path):
    nb = notebooks.read(path)
    unexecuted = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.strip() and c.execution_count is None
    ]
    assert unexecuted == [], "run `course refresh` to store outputs"
    counts = [c.execution_count for c in _code(nb) if c.execution_count is not None]
    assert counts == list(range(1, len(counts) + 1)), "executed top to bottom in one go"


@pytest.mark.parametrize("set_name, concept, track, path", SOURCES, ids=ids(SOURCES))
def test_errors_appear_only_where_meant_and_every_raising_cell_raises(
    set_name, concept, track, path
):
    for i, cell in enumerate(_code(notebooks.read(path))):
        raised = any(o.output_type == "error" for o in cell.outputs)
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        assert raised == tagged, f"code cell {i}: raised={raised}, tagged raises-exception={tagged}"


# An absolute path into a virtual environment or the course's own package: a folder of the
# machine that recorded the output (course refresh stores them relative to the course folder).
ABSOLUTE_COURSE_PATH = re.compile(
    r"(?:^|[\s\"'(]|\x1b\[[\d;]*m)(/[^\s\x1b\"']*/(?:\.venv|course_utils)/)"
)


@pytest.mark.parametrize("set_name, concept, track, path", SOURCES, ids=ids(SOURCES))
def test_stored_tracebacks_name_no_recording_folder(set_name, concept, track, path):
    for i, cell in enumerate(_code(notebooks.read(path))):
        for output in cell.outputs:
            for line in output.get("traceback", []) if output.output_type == "error" else []:
                found = ABSOLUTE_COURSE_PATH.search(line)
                assert not found, f"code cell {i}: traceback names {found.group(1)!r}"


@pytest.mark.parametrize("set_name, concept, track, path", SOURCES, ids=ids(SOURCES))
def test_checked_records_declare_how_they_reproduce(set_name, concept, track, path):
    """A float record in a checked cell carries a tolerance; an undeclared one is in an ignored cell."""
    for i, cell in enumerate(_code(notebooks.read(path))):
        ignored = "nbval-ignore-output" in cell.metadata.get("tags", [])
        for out in cell.outputs:
            rec = out.get("data", {}).get(RECORD_MIME)
            if rec is None:
                continue
            assert "tolerance" in rec, (
                f"code cell {i}: record {rec['name']!r} was stored without one"
            )
            assert rec["tolerance"] is not None or ignored, (
                f"code cell {i}: record {rec['name']!r} holds floats without a declared "
                "tolerance (pass rtol=/atol=) in a cell that nbval checks"
            )


def test_the_readme_names_the_cpus_that_recorded_the_stored_outputs():
    """`course refresh` notes the machine in each notebook; the README says which CPUs those were."""
    machines = set()
    for set_name, concept, track, path in SOURCES:
        recorded = notebooks.read(path).metadata.get("course", {}).get("recorded_on")
        assert recorded, f"{set_name}/{concept}/{track}: no recorded_on (run `course refresh`)"
        machines.add(recorded)
    readme = (ROOT / "README.md").read_text()
    cpus = {m.split(", ")[2] for m in machines}  # platform, arch, CPU model, ...
    assert [cpu for cpu in sorted(cpus) if cpu not in readme] == []


@pytest.mark.parametrize("concept", CONCEPTS)
def test_lessons_record_figures_in_both_tracks(concept):
    for track in notebooks.TRACKS:
        nb = notebooks.read(ROOT / "notebooks" / concept / f"{track}.ipynb")
        assert any(RECORD_MIME in o.get("data", {}) for c in _code(nb) for o in c.outputs)


@pytest.mark.parametrize("concept", CONCEPTS)
@pytest.mark.parametrize("track", notebooks.TRACKS)
def test_stored_solutions_pass_every_check(concept, track):
    nb = notebooks.read(ROOT / "solutions" / concept / f"{track}.ipynb")
    statuses = checks.read_checks(nb)
    calls = sum(c.source.count("cu.check(") for c in _code(nb))
    assert statuses and len(statuses) == calls, "every cu.check(...) cell shows its result"
    assert all(s["status"] == "passed" for s in statuses), statuses
    assert all(s["exercise"].startswith(f"{concept}.{track}.") for s in statuses)


def test_every_registered_checker_is_used_by_a_solution():
    used = set()
    for concept in CONCEPTS:
        for track in notebooks.TRACKS:
            used |= {
                s["exercise"]
                for s in checks.read_checks(
                    notebooks.read(ROOT / "solutions" / concept / f"{track}.ipynb")
                )
            }
    assert set(checks.load_checkers()) - used == set()


@pytest.mark.parametrize("concept", CONCEPTS)
@pytest.mark.parametrize("track", notebooks.TRACKS)
def test_exercises_carry_no_answers_and_no_outputs(concept, track):
    nb = notebooks.read(ROOT / "exercises" / concept / f"{track}.ipynb")
    assert all(not c.outputs and c.execution_count is None for c in _code(nb))
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "NotImplementedError" in text

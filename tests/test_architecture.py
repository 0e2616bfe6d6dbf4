"""The house rules of CONTRIBUTING.md's "Architecture": who imports whom, and what installs what.

- ``course_utils`` holds what lessons import; ``course_tools`` runs the course. Lessons never
  import ``course_tools``; ``course_utils`` never imports it either.
- No import cycles, counting imports inside functions too; no module over 600 lines.
- The core install (pyproject's ``dependencies``) is enough to import every helper, with the
  extras blocked; each extra in ``course_utils/extras.py`` is the one in pyproject.toml; each
  lesson's Colab cell installs exactly the extras the lesson asks for with ``cu.needs``.
"""

import ast
import json
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from conftest import ROOT
from course_tools import notebooks, template
from course_utils import extras

PACKAGES = ("course_utils", "course_tools")
MAX_LINES = 600
# Imported by the helpers but not declared by name: what comes with a declared package or with
# the frameworks themselves (IPython with ipywidgets and Jupyter; torch_xla on TPU runtimes).
FRAMEWORKS = {"torch", "tensorflow", "keras", "torch_xla"}
COMES_WITH = {"IPython": "ipywidgets", "sklearn": "scikit-learn"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def modules():
    """Return ``{dotted name: path}`` of every module of both packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports(name, path):
    """Yield the absolute names imported anywhere in a module (functions included)."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # "from a import b": module a.b where b is one, else a (graph() keeps what exists)
            yield from (f"{module}.{alias.name}" for alias in node.names)


def graph():
    """Return ``{module: {modules of ours it imports}}``, each edge to the most specific one."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in imports(name, path):
            parts = imported.split(".")
            while parts and ".".join(parts) not in MODULES:
                parts.pop()
            if parts:
                targets.add(".".join(parts))
        targets.discard(name)
        edges[name] = targets
    return edges


def test_the_helpers_never_import_the_machinery():
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.startswith("course_utils")
        for target in targets
        if target.startswith("course_tools")
    ]
    assert not offenders


def test_no_import_cycles():
    edges = graph()
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_is_longer_than_a_sitting():
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert not {n: k for n, k in long.items() if k > MAX_LINES}, f"split modules over {MAX_LINES}"


def lesson_notebooks():
    for set_name in notebooks.SETS:
        yield from sorted((ROOT / set_name).glob("*/*.ipynb"))


def code_of(path):
    return "\n".join(
        "".join(c["source"])
        for c in json.loads(path.read_text())["cells"]
        if c["cell_type"] == "code"
    )


@pytest.mark.parametrize("path", list(lesson_notebooks()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_lesson_imports_the_machinery(path):
    code = code_of(path)
    assert not re.search(r"\bcourse_tools\b", code), "a lesson imports only course_utils"
    helpers = {n.split(".")[1] for n in MODULES if n.startswith("course_utils.")}
    used = set(re.findall(r"\bcu\.(\w+)\.", code))
    assert used <= helpers, f"cu.{sorted(used - helpers)} is not a helper module"


@pytest.mark.parametrize("path", list(lesson_notebooks()), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_colab_cell_installs_exactly_its_lessons_extras(path):
    concept = path.parent.name
    code = code_of(path)
    wanted = extras.requirement(concept, template.INSTALL)
    assert f'%pip install -q "{wanted}"' in code
    needed = extras.lesson_extras(concept)
    asked = re.findall(r"cu\.needs\(([^)]*)\)", code)
    if needed:
        assert asked == [", ".join(f'"{e}"' for e in needed)], "cu.needs(...) once, same extras"
        assert code.index("cu.needs(") < code.index("cu.recorder("), "before any work"
    else:
        assert not asked


def test_the_extras_table_is_pyprojects():
    declared = PYPROJECT["optional-dependencies"]
    for extra, table in extras.EXTRAS.items():
        assert sorted(Requirement(r).name for r in declared[extra]) == sorted(table.values())


def third_party(path):
    std = set(sys.stdlib_module_names)
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        yield from {n.split(".")[0] for n in names} - std - set(PACKAGES)


def test_every_helper_import_is_declared_somewhere():
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    core = {Requirement(r).name for r in PYPROJECT["dependencies"]}
    optional = {m for table in extras.EXTRAS.values() for m in table}
    unknown = set()
    for name, path in MODULES.items():
        if not name.startswith("course_utils"):
            continue
        for top in third_party(path):
            dist = COMES_WITH.get(top) or (dists.get(top) or [top])[0]
            if top not in FRAMEWORKS and top not in optional and dist not in core:
                unknown.add(f"{top} ({name})")
    assert not unknown, "imports neither in the core nor in an extra"


BLOCKED_IMPORTS = r"""
import importlib, importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)

sys.meta_path.insert(0, Blocker())
import course_utils as cu
cu.quiet()
for name in sys.argv[2].split(","):
    importlib.import_module(name)
try:
    cu.needs("deploy")
except cu.extras.MissingExtra as err:
    print("MESSAGE", err)
"""


def test_the_core_install_imports_every_helper_with_the_extras_blocked():
    blocked = sorted({m for table in extras.EXTRAS.values() for m in table})
    helpers = [n for n in MODULES if n.startswith("course_utils") and not n.endswith("__main__")]
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORTS, ",".join(blocked), ",".join(helpers)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.split("MESSAGE ", 1)[1].strip()
    assert "onnx, onnxruntime" in message and "pip install" in message and "[deploy]" in message
    assert message.count(". ") == 0 and message.endswith("."), "one sentence"


@pytest.mark.parametrize("path", list(lesson_notebooks()), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_lesson_imports_only_the_core_and_its_extras(path):
    """What a lesson imports comes with the core install or with the extras it names; cells
    tagged raises-exception may import what is missing on purpose (08's converters)."""
    from importlib.metadata import packages_distributions

    concept = path.parent.name
    dists = packages_distributions()
    core = {Requirement(r).name for r in PYPROJECT["dependencies"]}
    named = extras.lesson_extras(concept) + extras.OPTIONAL.get(concept, ())
    allowed = FRAMEWORKS | {m for e in named for m in extras.EXTRAS[e]}
    std = set(sys.stdlib_module_names) | set(PACKAGES)
    missing = set()
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code" or "raises-exception" in cell["metadata"].get("tags", []):
            continue
        source = "".join(cell["source"])
        for top in re.findall(r"^\s*(?:import|from)\s+(\w+)", source, re.M):
            dist = COMES_WITH.get(top) or (dists.get(top) or [top])[0]
            if top not in std and top not in allowed and dist not in core:
                missing.add(top)
    assert not missing, f"{concept} imports {sorted(missing)}: add them to the core or an extra"

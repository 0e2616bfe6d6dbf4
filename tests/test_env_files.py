"""The environment files agree: pyproject.toml, environment.yml, the CI pins, README and .ci/run."""

import re
import tomllib

from packaging.requirements import Requirement

from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def env_pip():
    text = (ROOT / "environment.yml").read_text()
    block = text.split("  - pip:\n", 1)[1]
    return [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]


def test_environment_yml_mirrors_pyproject():
    extras = PYPROJECT["optional-dependencies"]
    names = ("torch", "tensorflow", "deploy", "edge", "course", "dev")
    wanted = PYPROJECT["dependencies"] + [r for name in names for r in extras[name]]
    listed = [line for line in env_pip() if not line.startswith("-")]
    assert sorted(listed) == sorted(wanted)
    assert "--no-deps -e ." in env_pip()


def test_environment_yml_python_is_supported():
    python = re.search(r"- python=(\d+\.\d+)", (ROOT / "environment.yml").read_text()).group(1)
    minimum = PYPROJECT["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, minimum.split(".")))


def pins():
    lines = (ROOT / "requirements" / "ci-cpu.txt").read_text().splitlines()
    found = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, version = line.split("==")
            found[name.lower().replace("_", "-")] = version
    return found


def test_ci_pins_the_frameworks_exactly_and_cpu_only():
    p = pins()
    assert p["torch"] == "2.13.0" and p["tensorflow-cpu"] == "2.21.0"
    assert not [name for name in p if name.startswith("nvidia-")]


def test_every_requirement_is_pinned_within_its_supported_range():
    p = pins()
    extras = PYPROJECT["optional-dependencies"]
    pinned = [r for name, reqs in extras.items() if name != "tensorflow" for r in reqs]
    for line in PYPROJECT["dependencies"] + pinned:
        req = Requirement(line)
        assert req.name in p, f"{req.name} has no pin in requirements/ci-cpu.txt"
        assert req.specifier.contains(p[req.name]), (
            f"{req.name}=={p[req.name]} is outside {req.specifier}"
        )


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py test" in readme and "python3 course.py run" in readme
    assert "python3 course.py test" in (ROOT / ".ci" / "run").read_text()

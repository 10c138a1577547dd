"""requirements.txt holds what Airflow needs to run the DAGs (the image installs it alone), requirements-dev.txt the
tools of the tests on top of it; both pinned to the last package, checked against the installed distributions.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"(?P<name>[A-Za-z0-9._-]+)(?:\[(?P<extras>[a-z0-9,_-]+)\])?==(?P<version>\S+)")
DEV_TOOLS = {"pytest", "hypothesis", "playwright", "moto", "responses", "ruff", "mypy", "aiosmtpd"}
# Installed with Python's venv and pinned by neither file, as pip freeze leaves them out:
PACKAGING_TOOLS = {"pip", "setuptools"}


def pins(file: str) -> dict[str, tuple[str, set[str]]]:
    """The file's pins by canonical name: (version, extras); ``-r`` lines are checked by the tests below."""
    found = {}
    for line in (ROOT / file).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", "-r ")):
            continue
        pin = PIN.fullmatch(line)
        assert pin, f"{file}: {line!r} is not pinned as name==version"
        name = canonicalize_name(pin["name"])
        assert name not in found, f"{file} pins {name} twice"
        found[name] = (pin["version"], set(filter(None, (pin["extras"] or "").split(","))))
    return found


RUNTIME = pins("requirements.txt")
DEV = pins("requirements-dev.txt")


def unpinned_dependencies(pinned: dict[str, tuple[str, set[str]]]) -> dict[str, set[str]]:
    """Dependencies of the pinned distributions (as installed here, with their extras) that no pin names."""
    missing: dict[str, set[str]] = {}
    for name, (version, extras) in pinned.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            pytest.fail(f"{name}=={version} is pinned but not installed: run scripts/setup_env.sh")
        assert dist.version == version, f"{name} {dist.version} installed, {version} pinned: run scripts/setup_env.sh"
        for spec in map(Requirement, dist.requires or []):
            needed = spec.marker is None or any(spec.marker.evaluate({"extra": extra}) for extra in extras or {""})
            dependency = canonicalize_name(spec.name)
            if needed and dependency not in pinned and dependency not in PACKAGING_TOOLS:
                missing.setdefault(dependency, set()).add(name)
    return missing


def test_development_file_adds_the_tools_to_the_runtime_file():
    lines = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert "-r requirements.txt" in lines
    assert not set(RUNTIME) & set(DEV), "a package pinned in both files"
    assert DEV_TOOLS <= set(DEV)
    assert not DEV_TOOLS & set(RUNTIME), "test tools in the image's requirements"


@pytest.mark.parametrize("pinned", [RUNTIME, RUNTIME | DEV], ids=["runtime", "runtime and development"])
def test_every_dependency_of_a_pinned_package_is_pinned_too(pinned):
    assert not unpinned_dependencies(pinned)


def test_the_moodle_providers_dependencies_are_pinned_in_the_runtime_file():
    """scripts/setup_env.sh and the Dockerfile install plugins/moodle without its dependencies (--no-deps)."""
    project = tomllib.loads((ROOT / "plugins" / "moodle" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in map(Requirement, project["dependencies"]):
        name = canonicalize_name(spec.name)
        assert name in RUNTIME, f"plugins/moodle needs {spec}; requirements.txt does not pin {name}"
        assert spec.specifier.contains(RUNTIME[name][0]), f"plugins/moodle needs {spec}, {RUNTIME[name][0]} pinned"


def third_party_imports(folder: Path, own: set[str]) -> dict[str, Path]:
    """Top-level names of absolute imports in the folder's modules that are neither the stdlib nor the project's."""
    found = {}
    for module in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for top in {name.split(".")[0] for name in names} - own - set(sys.stdlib_module_names):
                found.setdefault(top, module)
    return found


def test_what_the_production_code_imports_is_in_the_runtime_file():
    own = {path.stem for folder in (ROOT / "plugins", ROOT / "plugins" / "moodle", ROOT / "dags")
           for path in folder.iterdir() if path.suffix == ".py" or (path / "__init__.py").is_file()}
    providers = packages_distributions()
    for folder in (ROOT / "plugins", ROOT / "dags"):
        for name, module in third_party_imports(folder, own).items():
            assert {canonicalize_name(dist) for dist in providers.get(name, [])} & set(RUNTIME), \
                f"{module.relative_to(ROOT)} imports {name}, which no package of requirements.txt provides"


def test_the_image_installs_the_runtime_requirements_only():
    instructions = [line for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
                    if line and not line.startswith("#")]
    assert any(line.startswith("RUN pip install") and "requirements.txt" in line for line in instructions)
    assert not any("requirements-dev" in line for line in instructions)

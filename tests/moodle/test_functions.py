"""The registry of Moodle functions (moodle_provider.functions) is the one list: every function a kind's modules
name is in it and required by that kind's flows, and the README's tables say what it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest

from moodle_provider.functions import BY_NAME, FLOWS, FUNCTIONS, SITE_INFO, functions_of, required_functions
from moodle_stand_in.server import FUNCTIONS as STAND_IN_FUNCTIONS
from psiber.config import Integration
from school.config import FLOWS as SCHOOL_FLOWS
from tests.moodle_stand_in.test_moodle_contract import ESS_DIR, LAB_DIR, OWN_DIR, SCHOOL_DIR, SHARED_DIR
from tests.moodle_stand_in.test_reportbuilder_contract import REPORTBUILDER_DIR

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
# Every flow an integration of each kind may run (PSIber's chosen in its file, plus the field matching every run does
# and the Report Builder reads of an integration with moodle_reports).
KIND_FLOWS = {
    "psiber": {*get_args(get_args(Integration.model_fields["flows"].annotation)[0]), "fields", "reports"},
    "school": set(SCHOOL_FLOWS),
}
SHARED = {"sync_common", "moodle"}  # machinery every kind uses; the functions it names must be known
# A Moodle web-service function's name: component (core, a plugin type) and at least two more words (report_
# plugins left out: the SQL files' names, report_select_runs..., would pass for them).
FUNCTION_NAME = re.compile(r"(core|enrol|mod|gradereport|auth|tool|local|block|message|qbank)_[a-z0-9]+_[a-z0-9_]+")


def named_functions(source: str) -> set[str]:
    """Every string in the module's code that is a Moodle function's name (a call's, a constant's, a table's)."""
    return {node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and FUNCTION_NAME.fullmatch(node.value)}


def not_required(source: str, flows: set[str]) -> set[str]:
    """The functions a module of a kind with these flows names that no run of the kind would ask the site for."""
    required = set(required_functions(flows)) | {name for name in BY_NAME if BY_NAME[name].optional
                                                  and flows.intersection(BY_NAME[name].flows)}
    return named_functions(source) - required


def modules_by_package() -> dict[str, list[Path]]:
    packages: dict[str, list[Path]] = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        packages.setdefault(path.relative_to(PLUGINS).parts[0], []).append(path)
    return packages


def test_every_function_a_kind_names_is_required_by_its_flows():
    unrequired = {}
    for package, paths in modules_by_package().items():
        if package in SHARED:
            continue
        for path in paths:
            source = path.read_text()
            if named_functions(source) and package not in KIND_FLOWS:
                pytest.fail(f"{path.relative_to(ROOT)} calls Moodle: add its kind's flows to KIND_FLOWS")
            found = not_required(source, KIND_FLOWS.get(package, set()))
            if found:
                unrequired[str(path.relative_to(ROOT))] = sorted(found)
    assert unrequired == {}, "add these to moodle_provider.functions.FUNCTIONS with the flows calling them"


def test_the_shared_machinery_names_only_functions_the_registry_knows():
    for package in SHARED:
        for path in modules_by_package()[package]:
            assert named_functions(path.read_text()) <= {SITE_INFO, *BY_NAME}, path


def test_a_flow_calling_a_function_its_kind_does_not_require_is_caught():
    flow_module = 'def delete(hook, ids):\n    return hook.call("core_course_delete_courses", courseids=ids)\n'
    assert not_required(flow_module, KIND_FLOWS["psiber"]) == {"core_course_delete_courses"}
    assert not_required(flow_module, KIND_FLOWS["school"]) == set()
    assert not_required('hook.call("auth_email_get_signup_settings")', KIND_FLOWS["psiber"]) == set()  # optional


def test_every_flow_in_the_registry_is_a_flow_of_some_kind():
    assert set(FLOWS) <= set().union(*KIND_FLOWS.values())
    assert len({function.name for function in FUNCTIONS}) == len(FUNCTIONS)  # each function listed once


def test_a_runs_required_functions_follow_its_flows():
    assert required_functions(["users"]) == (SITE_INFO, "core_user_get_users_by_field", "core_user_get_users",
                                             "core_user_create_users", "core_user_update_users")
    assert "auth_email_get_signup_settings" not in required_functions(KIND_FLOWS["psiber"])  # optional
    assert len(required_functions(SCHOOL_FLOWS)) == 14


def readme_tables() -> dict[str, set[str]]:
    """Each row of the README's '| flow | Moodle functions |' tables: its flow and the functions it names."""
    rows: dict[str, set[str]] = {}
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[:2] == ["flow", "Moodle functions"]:
            in_table = True
        elif not cells:
            in_table = False
        elif in_table and not set(cells[0]) <= {"-", " "}:
            flow = cells[0].strip("`").split()[0].strip("`")
            assert flow not in rows, f"README lists the flow {flow} twice"
            rows[flow] = set(re.findall(r"`([a-z0-9_]+)`", cells[1]))
    return rows


def test_the_readme_tables_say_what_the_registry_says():
    expected = {flow: set(functions_of(flow)) for flow in FLOWS}
    rendered = "\n".join(f"| {flow} | {', '.join(f'`{name}`' for name in functions_of(flow))} |" for flow in FLOWS)
    assert readme_tables() == expected, f"README's rows should read:\n{rendered}"


def test_the_stand_in_answers_every_function_as_a_read_or_a_write_alike():
    assert {name: STAND_IN_FUNCTIONS[name].writes for name in BY_NAME if name in STAND_IN_FUNCTIONS} == \
        {function.name: function.write for function in FUNCTIONS}


def test_every_function_has_a_recording_the_stand_in_is_held_to():
    recorded = {match for folder in (OWN_DIR, LAB_DIR, SHARED_DIR, SCHOOL_DIR, ESS_DIR, REPORTBUILDER_DIR)
                for path in folder.rglob("*.json")
                for match in re.findall(r'"wsfunction":\s*"([a-z0-9_]+)"', path.read_text())}
    assert {SITE_INFO, *BY_NAME} - recorded == set()

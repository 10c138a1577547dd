"""The users flow's pure steps fed by an HR export (plain tables, no Moodle): rejected rows named by line for the
HR system's administrator, profile fields from the export's columns, leavers suspended as gone from the export;
the integration file's checks; the kind found by the registry."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import yaml
from hr_file.config import HrFileConfigError, HrFileIntegration
from hr_file.export_file import HR_EXPORT, employee_frame
from hr_file.kind import KIND

from psiber.employee_validation import validate_employees
from psiber.user_plan import plan_user_changes
from psiber.user_transform import build_target_users
from sync_common.integration_kinds import registered_kinds

OWNER = "HR system administrator"
EXPORT = """idnumber,firstname,lastname,email,status,contract
HR1,Thandi,Mokoena,thandi@example.com,Active,Permanent
HR2,Pieter,Botha,pieter@example.com,On leave,Permanent
,Ayesha,Patel,ayesha@example.com,Active,Permanent
HR4,Sipho,Dlamini,sipho@example.com,Active,Seasonal
HR5,Lerato,Nkosi,lerato+hr@example.com,Active,Contract
"""


def integration() -> HrFileIntegration:
    return HrFileIntegration.model_validate({
        "name": "Acme HR", "moodle_conn_id": "moodle", "state_conn_id": "state", "pseudo_email_domain": "acme.com",
        "export": {"path": "/exports/acme.csv"},
        "users": {"profile_field_matches": [
            {"moodle_field": "employmenttype", "column": "contract", "menu_options": ["Permanent", "Contract"]}]}})


def employees() -> pd.DataFrame:
    export = pd.read_csv(io.StringIO(EXPORT), dtype=str, keep_default_na=False).replace("", None)
    frame = employee_frame(export.astype(object), integration())
    frame.insert(0, "employee_id", [1, 2, -3, 4, 5])
    return frame


def test_rejected_rows_are_named_by_number_and_line_for_the_hr_system_administrator():
    result = validate_employees(employees(), integration().users.known_statuses, HR_EXPORT)
    assert {(r.record, r.reasons, r.owner) for r in result.invalid} == {
        ("HR2, acme.csv line 3", ("employment status 'On leave' is neither an active nor an inactive status of the "
                                  "integration; correct it in HR, or list it in users.active_statuses / "
                                  "users.inactive_statuses",), OWNER),
        ("(no employee number), acme.csv line 4", ("employee number is missing",), OWNER),
    }
    assert list(result.valid["employee_number"]) == ["HR1", "HR4", "HR5"]


def test_profile_fields_come_from_the_exports_columns_and_problems_go_to_the_hr_system_administrator():
    targets, outcomes = build_target_users(employees().iloc[[0, 3, 4]], integration(), HR_EXPORT)
    assert targets.iloc[0]["customfields"] == {"employmenttype": "Permanent"}
    assert targets.iloc[1]["customfields"] == {}
    assert [(o.record, o.action, o.owner) for o in outcomes] == [("HR4", "warning", OWNER), ("HR5", "invalid", OWNER)]
    assert outcomes[0].reason.startswith("contract value is not an option of Moodle menu field 'employmenttype'")
    assert "correct it in HR, or allow extended username characters" in outcomes[1].reason


def test_a_linked_employee_gone_from_the_export_is_suspended_as_such():
    targets, _ = build_target_users(employees().iloc[[0]], integration(), HR_EXPORT)
    account = {"id": 9, "username": "pieter@example.com", "email": "pieter@example.com", "firstname": "Pieter",
               "lastname": "Botha", "idnumber": "HR2", "suspended": False, "customfields": []}
    links = pd.DataFrame([(2, "HR2", 1, 9, "pieter@example.com")],
                         columns=["employee_id", "employee_number", "employee_exists", "moodle_user_id",
                                  "moodle_username"])
    plan = plan_user_changes(targets, [account], links, [1], source=HR_EXPORT)
    assert [(u["employee_number"], u["action"], u["reason"]) for u in plan.updates] == [
        ("HR2", "suspended", "employee is no longer in the HR export")]


@pytest.mark.parametrize("change, problem", [
    ({"export": {"path": "/exports/acme"}},
     "field 'export': Value error, cannot tell the format of '/exports/acme' from its name: set 'format' to csv or "
     "parquet"),
    ({"columns": {"email": "idnumber"}},
     "Value error, columns idnumber are given to more than one employee element"),
    ({"export": {"path": "/exports/acme.csv", "sheet": 1}}, "field 'export.sheet': Extra inputs are not permitted"),
    ({"export": {"path": "/exports/acme.csv", "encoding": "utf-9"}},
     "field 'export.encoding': Value error, 'utf-9' is not a text encoding Python knows, like 'utf-8' or 'cp1252'"),
])
def test_an_integration_file_that_cannot_be_used_names_the_file_the_field_and_its_owner(tmp_path, change, problem):
    path = tmp_path / "acme.yaml"
    path.write_text("\n".join(["name: Acme HR", "moodle_conn_id: moodle", "state_conn_id: state",
                               "pseudo_email_domain: acme.com", "export: {path: /exports/acme.csv}"]))
    assert KIND.load_file(path).key == "acme_hr"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **change}))
    with pytest.raises(HrFileConfigError) as refused:
        KIND.load_file(path)
    assert str(refused.value).startswith(f"{path}: ") and problem in str(refused.value)
    assert str(refused.value).endswith("owner: the data engineer who maintains the integration files")


def test_the_registry_finds_the_kind_by_its_folder_of_its_own():
    assert KIND in registered_kinds()
    assert KIND.dag_id(integration()) == "hr_file_moodle_acme_hr" and KIND.report_conn_id(integration()) == "state"
    good, bad = KIND.load()
    assert [settings.name for settings in good.values()] == ["Demo HR Export"] and bad == {}

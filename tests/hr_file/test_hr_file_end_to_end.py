"""The HR export file kind's DAG run for real with dag.test(), on SQLite and on PostgreSQL: the export (the demo's
CSV, copied so each test may change it) feeds the users flow into a fresh Moodle stand-in, and the links, refusals
and reports go to a state database made for the test."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from factories import demo_connections
from moodle_provider.functions import is_write
from moodle_stand_in import MoodleStandIn

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "integrations" / "hr_file" / "demo_hr_export.yaml"
DAG_ID = "hr_file_moodle_demo_hr_export"


@pytest.fixture
def hr_run(airflow_db, psiber, tmp_path, monkeypatch):
    """Runs the demo HR export integration's DAG once per call, its export at ``hr_run.export``, and returns the
    run's summary (with its state and run id)."""
    engine, connection = psiber
    export = tmp_path / "export.csv"
    shutil.copy(ROOT / "include" / "hr_file" / "demo_export.csv", export)
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    (integrations / DEMO.name).write_text(DEMO.read_text().replace("hr_file/demo_export.csv", str(export)))
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    demo_connections(monkeypatch, moodle.base_url, token, tmp_path / "runs", hr_file_demo=connection)
    monkeypatch.setenv("HR_FILE_MOODLE_INTEGRATIONS", str(integrations))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "hr_file_moodle_sync.py"))
    assert not bag.import_errors
    dag = bag.dags[DAG_ID]

    def run(**conf) -> dict:
        dag_run = dag.test(run_conf=conf or None)
        [path] = (tmp_path / "runs").glob(f"*/{dag_run.run_id.replace(':', '_').replace('+', '_')}/summary.json")
        summary = json.loads(path.read_text())
        summary["state"], summary["run_id"] = str(dag_run.state), dag_run.run_id
        return summary

    run.moodle, run.engine, run.export = moodle, engine, export
    yield run
    moodle.stop()


def outcomes(summary: dict, action: str) -> dict[str, str]:
    return {o["record"]: o["reason"] for o in summary["outcomes"] if o["action"] == action}


def account(moodle: MoodleStandIn, idnumber: str) -> dict:
    [user] = [u for u in moodle.users.values() if u.get("idnumber") == idnumber]
    return user


def count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()  # noqa: S608 - test's table


def test_the_export_becomes_accounts_a_second_run_changes_nothing_and_a_changed_row_updates_its_account(hr_run):
    first = hr_run()
    assert first["state"] == "success" and first["complete"]
    users = first["counts"]["users"]
    assert users["extracted"] == 16
    assert set(outcomes(first, "created")) == {"HR0001", "HR0002", "HR0003", "HR0004", "HR0005", "HR0007",
                                               "HR0008", "HR0009", "HR0014", "HR0016"}
    invalid = outcomes(first, "invalid")  # named by employee number (or none) and line, for the HR administrator
    assert invalid == {
        "HR0010, export.csv line 11": "e-mail address is malformed (Moodle would refuse it)",
        "HR0011, export.csv line 12": "employment status 'On leave' is neither an active nor an inactive status of "
                                      "the integration; correct it in HR, or list it in users.active_statuses / "
                                      "users.inactive_statuses",
        "HR0012, export.csv line 13": "surname is missing",
        "(no employee number), export.csv line 14": "employee number is missing",
    }
    assert {o["owner"] for o in first["outcomes"] if o["action"] == "invalid"} == {"HR system administrator"}
    assert "Seasonal" not in json.dumps(first["outcomes"])  # values are not reported, the field is
    assert outcomes(first, "warning")["HR0009"].startswith("profile_field_employmenttype value is not an option")
    assert set(outcomes(first, "skipped")) == {"HR0006", "HR0015"}  # not active and no account: none is made
    pseudo = account(hr_run.moodle, "HR0004")
    assert pseudo["email"] == "8001015009087hr0004@example.com" == pseudo["username"]
    assert account(hr_run.moodle, "HR0001")["customfields"] == {"gender": "Female", "employmenttype": "Permanent"}
    assert count(hr_run.engine, "moodle_user_link") == 10

    calls = len(hr_run.moodle.calls)
    second = hr_run()
    assert second["state"] == "success"
    assert [name for name, _ in hr_run.moodle.calls[calls:] if is_write(name)] == []  # nothing written
    assert second["counts"]["users"]["created"] == second["counts"]["users"]["updated"] == 0
    assert second["counts"]["users"]["unchanged"] == len(outcomes(first, "created"))
    # Counted, not listed, but for the row whose profile-field warning is given again each night (never settled).
    assert set(outcomes(second, "unchanged")) == set(outcomes(second, "warning")) == {"HR0009"}
    assert count(hr_run.engine, "moodle_user_link") == 10 and count(hr_run.engine, "employee") == 15

    rows = hr_run.export.read_text().splitlines()
    rows = [row.replace("Mokoena", "Mokoena-Dube") if row.startswith("HR0001,") else row for row in rows]
    hr_run.export.write_text("\n".join(row for row in rows if not row.startswith("HR0002,")) + "\n")
    third = hr_run()
    assert third["state"] == "success"
    assert outcomes(third, "updated") == {"HR0001": "changed: lastname"}
    assert outcomes(third, "suspended") == {"HR0002": "employee is no longer in the HR export"}
    assert account(hr_run.moodle, "HR0001")["lastname"] == "Mokoena-Dube"
    assert account(hr_run.moodle, "HR0002")["suspended"]


def test_the_run_report_is_read_through_the_report_pages(hr_run, monkeypatch):
    run = hr_run()
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    purge_cached_app()
    try:
        client = TestClient(create_app("core"))
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        headers = {"Authorization": f"Bearer {token}"}
        listing = client.get("/sync-report/", headers=headers)
        assert listing.status_code == 200 and "HR export file" in listing.text and "Demo HR Export" in listing.text
        page = client.get(f"/sync-report/dags/{DAG_ID}/runs/{run['run_id']}", headers=headers)
        assert page.status_code == 200
        assert "HR0010, export.csv line 11" in page.text and "HR system administrator" in page.text
        found = client.get(f"/sync-report/dags/{DAG_ID}/runs/{run['run_id']}?q=hr0010", headers=headers)
        assert "HR0010, export.csv line 11" in found.text and "HR0001" not in found.text  # found by its number
    finally:
        purge_cached_app()


@pytest.mark.parametrize("export, problem", [
    ("idnumber,firstname,email,status\nHR0001,Thandi,t@example.com,Active\n", "has no column 'lastname'"),
    ("idnumber,firstname,lastname,email,status\n", "the file has no employee rows"),
    ("", "the file is empty")], ids=["missing column", "no rows", "empty file"])
def test_a_bad_export_fails_the_run_naming_file_and_owner_before_anything_is_written(hr_run, export, problem):
    hr_run.export.write_text(export)
    accounts = set(hr_run.moodle.users)
    failed = hr_run()
    assert failed["state"] == "failed" and failed["failed_tasks"] == ["extract_employees"]
    [why] = [failure for failure in failed["failures"] if failure["task"] == "extract_employees"]
    assert why["detail"].startswith(f"HR export {hr_run.export}: {problem}")
    assert why["owner"] == "HR system administrator"
    assert set(hr_run.moodle.users) == accounts
    assert not inspect(hr_run.engine).has_table("employee")


def test_a_row_moodle_refuses_is_remembered_in_the_state_database_and_quarantined_the_next_night(hr_run):
    """Another account holds the e-mail in capitals, which Moodle's look-up by e-mail does not find but its
    uniqueness check does: the refusal is the row's, kept in the state database, and not sent again unchanged."""
    holder = hr_run.moodle.add_user(username="tm", email="THANDI.MOKOENA@EXAMPLE.COM", idnumber="SOMEONE-ELSE")
    first = hr_run()
    assert first["state"] == "success"
    conflict = outcomes(first, "conflict")["HR0001"]
    assert f"already used by Moodle user #{holder['id']}" in conflict
    assert count(hr_run.engine, "moodle_refusal") == 1
    calls = len(hr_run.moodle.calls)
    second = hr_run()
    assert outcomes(second, "quarantined")["HR0001"].startswith("not sent again: Moodle refused it on ")
    assert "when its HR data changes" in outcomes(second, "quarantined")["HR0001"]
    sent = json.dumps([variables for name, variables in hr_run.moodle.calls[calls:] if is_write(name)])
    assert "HR0001" not in sent

"""Every sync report endpoint on Airflow's own API app: who may read what, escaping, CSV, unknown runs, for
PSIber's integrations and the school MIS's.

Airflow's simple auth manager cannot restrict a user to some DAGs, so these tests use it with one
rule added, as a FAB support role would have it: the user "support" reads only the Report Alpha
integration and the Report Gamma school, "hr" only Report Alpha.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import secrets
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient
from sqlalchemy import text

from factories import GOOD, write
from psiber.kind import KIND as PSIBER
from school.demo_school import STUDENT_EMAIL_TAKEN, STUDENT_WITHOUT_EMAIL
from school.preview import PREVIEW_ORDER
from sync_common import report_store
from sync_common.integration_kinds import ReportedIntegration, integrations_by_dag, registered_kinds
from sync_common.report_pages import CSV_CHUNK, PAGE_SIZE, UnreadableReports, _database, csv_lines, run_history
from sync_common.report_store import CourseReads, save_run_report
from tests.school.test_school_config import MINIMAL
from tests.school.test_school_end_to_end import DAG_ID as DEMO_SCHOOL
from tests.school.test_school_end_to_end import school_run  # noqa: F401 - the fixture that runs the demo school

# Integration names of their own: these DAG rows must not stand in for the demo DAG other tests run.
ALLOWED, OTHER, SCHOOL = "psiber_moodle_report_alpha", "psiber_moodle_report_beta", "school_moodle_report_gamma"
BROKEN = "psiber_moodle_report_delta"  # its file names a Connection that does not exist
READABLE = {"support": {ALLOWED, SCHOOL}, "hr": {ALLOWED}}
RUN_ID = "manual__2026-11-20T01:00:00+00:00"
SCHOOL_FILE = MINIMAL.replace("Test School", "Report Gamma").replace("school_x", "school_gamma")
LEARNER = {"moodle_course_id": 7, "moodle_user_id": 11, "course_code": "DRV-101", "course_name": "Defensive Driving",
           "employee_number": "EE001", "learner_name": "Ann <i>Smith</i>", "completed": 1, "completed_on": "2026-11-19",
           "grade": 82.5, "result": "Competent", "passed": 1, "result_on": "2026-11-19", "run_id": RUN_ID}
NAMES = {"ee001": "Ann <i>Smith</i>", "ee003": "Cy Naidoo"}
COURSES = [{"moodle_course_id": 7, "course_code": "DRV-101", "course_name": "Defensive Driving", "not_counted": ""},
           {"moodle_course_id": 12, "course_code": "ONB-1", "course_name": "Company Induction",
            "not_counted": "completion tracking is off in Moodle"},
           {"moodle_course_id": 13, "course_code": "HS-102", "course_name": "First Aid", "not_counted": ""}]


class OneIntegrationAuthManager(SimpleAuthManager):
    """The simple auth manager, except that 'support' and 'hr' may read their ``READABLE`` DAGs only."""

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
        if user.get_name() in READABLE and (details is None or details.id not in READABLE[user.get_name()]):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)


def report(outcomes: list[dict]) -> dict:
    return {"run_id": RUN_ID, "started_at": "2026-11-20T01:00:00+00:00", "finished_at": "2026-11-20T01:02:05+00:00",
            "complete": False, "moodle_calls": 17,
            "counts": {"users": {"created": 1, "failed": 1, "invalid": 1}},
            "tasks": [{"task_id": "apply_user_changes", "map_index": -1, "state": "failed", "duration": 2.0},
                      {"task_id": "read_completions", "map_index": 3, "state": "failed", "duration": 1.0},
                      {"task_id": "record_user_links", "map_index": -1, "state": "upstream_failed"}],
            "outcomes": outcomes}


@pytest.fixture(scope="module")
def api(airflow_db, tmp_path_factory):
    """Airflow's API app with this project's plugin, two integrations and a report of one run in each."""
    folder = tmp_path_factory.mktemp("reports")
    integrations = folder / "integrations"
    integrations.mkdir()
    write(integrations, "alpha.yaml", GOOD.replace("Driver Training", "Report Alpha"))
    write(integrations, "beta.yaml",
          GOOD.replace("Driver Training", "Report Beta").replace("psiber_demo", "psiber_beta"))
    write(integrations, "delta.yaml",
          GOOD.replace("Driver Training", "Report Delta").replace("psiber_demo", "psiber_delta_missing"))
    patch = pytest.MonkeyPatch()
    patch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(integrations))
    patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", f"{__name__}.OneIntegrationAuthManager")
    patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,support:viewer,hr:viewer")
    patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    from sqlalchemy import create_engine

    for conn_id, name in (("PSIBER_DEMO", "alpha"), ("PSIBER_BETA", "beta")):
        path = folder / f"{name}.db"
        patch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
        engine = create_engine(f"sqlite:///{path}")
        save_run_report(engine, f"report_{name}", f"psiber_moodle_report_{name}", report([
            {"record": "EE001", "action": "created", "reason": "", "owner": "", "flow": "users"},
            {"record": "<script>alert(1)</script>", "action": "invalid", "reason": "surname <b>missing</b>",
             "owner": "PSIber HR", "flow": "users"},
            {"record": "EE003", "action": "failed", "reason": "=HYPERLINK(\"http://x\")", "owner": "Moodle admin",
             "flow": "users"},
        ]), keep_days=400, learners=CourseReads([LEARNER], [], COURSES), names=NAMES)
        engine.dispose()
    schools = folder / "schools"
    schools.mkdir()
    write(schools, "gamma.yaml", SCHOOL_FILE)
    patch.setenv("SCHOOL_MOODLE_INTEGRATIONS", str(schools))
    patch.setenv("AIRFLOW_CONN_SCHOOL_GAMMA", json.dumps({"conn_type": "sqlite", "host": str(folder / "gamma.db")}))
    engine = create_engine(f"sqlite:///{folder / 'gamma.db'}")
    save_run_report(engine, "report_gamma", SCHOOL, {**report([
        {"record": "S-9001", "action": "would_delete", "reason": "Moodle user #40: left", "owner": "",
         "flow": "people"},
        {"record": "S-9002 in SUB-1", "action": "would_enrol", "reason": "role #5", "owner": "", "flow": "enrolments"},
    ]), "preview": True, "counts": {"people": {"would_delete": 1}, "enrolments": {"would_enrol": 1}}}, keep_days=400)
    engine.dispose()
    _register_dags([ALLOWED, OTHER, SCHOOL, BROKEN])
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app

    purge_cached_app()
    app = create_app("core")
    manager = get_auth_manager()
    tokens = {name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
              for name, role in (("admin", "admin"), ("support", "viewer"), ("hr", "viewer"))}
    yield TestClient(app), tokens
    purge_cached_app()
    patch.undo()


def _register_dags(dag_ids: list[str]) -> None:
    """The DAG rows the auth manager lists readable DAGs from (the dag-processor writes them in a deployment)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.get(DagBundleModel, "reports-test") is None:
            session.add(DagBundleModel(name="reports-test"))
            session.flush()
        for dag_id in dag_ids:
            if session.get(DagModel, dag_id) is None:
                session.add(DagModel(dag_id=dag_id, bundle_name="reports-test", fileloc="/dags/psiber_moodle_sync.py"))


def get(api, path: str, user: str | None):
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
    return client.get(f"/sync-report{path}", headers=headers)


PAGES = [f"/dags/{{dag}}/runs/{RUN_ID}", f"/dags/{{dag}}/runs/{RUN_ID}/outcomes.csv", "/dags/{dag}/runs",
         "/dags/{dag}/courses", "/dags/{dag}/courses/7", "/dags/{dag}/records?q=EE001"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_and_the_csv_refuse_anonymous_callers_and_users_without_access_to_the_dag(api, page):
    assert get(api, page.format(dag=ALLOWED), None).status_code == 401
    assert get(api, page.format(dag=OTHER), "support").status_code == 403
    assert get(api, page.format(dag=OTHER), "admin").status_code != 403


def test_the_run_report_shows_counts_problems_first_with_owners_and_log_links(api):
    page = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}", "support")
    assert page.status_code == 200
    html = page.text
    assert "17 Moodle calls" in html and "created&nbsp;<b>1</b>" in html
    assert html.index("EE003") < html.index("EE001")  # problems first
    assert "Moodle admin" in html and "PSIber HR" in html
    assert f'href="/dags/{ALLOWED}/runs/manual__2026-11-20T01%3A00%3A00%2B00%3A00/tasks/apply_user_changes"' in html
    assert "/tasks/read_completions/mapped/3" in html
    assert "Not run because a task before them failed: record_user_links" in html


def test_report_data_is_escaped_so_a_name_with_markup_renders_inert(api):
    html = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}", "admin").text
    assert "<script>alert(1)</script>" not in html and "<b>missing</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "surname &lt;b&gt;missing&lt;/b&gt;" in html


def test_filters_and_search_narrow_the_records(api):
    html = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}?action=failed", "support").text
    assert "EE003" in html and "EE001" not in html
    html = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}?q=ee001", "support").text
    assert "EE001" in html and "EE003" not in html and "1 record," in html
    html = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}?owner=PSIber+HR", "support").text
    assert "&lt;script&gt;" in html and "EE003" not in html


def test_the_csv_neutralises_formula_cells_and_follows_the_filters(api):
    answer = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}/outcomes.csv", "support")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["record"] for row in rows] == ["<script>alert(1)</script>", "EE003", "EE001"]
    assert rows[1]["reason"] == "'=HYPERLINK(\"http://x\")"
    filtered = list(csv.DictReader(io.StringIO(get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}/outcomes.csv?flow=users"
                                                         "&action=created", "support").text)))
    assert [row["record"] for row in filtered] == ["EE001"]


def test_an_unknown_run_course_or_dag_is_404(api):
    assert get(api, f"/dags/{ALLOWED}/runs/manual__1999-01-01", "support").status_code == 404
    assert get(api, f"/dags/{ALLOWED}/runs/manual__1999-01-01/outcomes.csv", "support").status_code == 404
    assert get(api, f"/dags/{ALLOWED}/courses/999", "support").status_code == 404
    assert get(api, "/dags/not_an_integration/runs", "admin").status_code == 404


def test_the_runs_page_lists_each_run_with_counts_problems_and_duration(api):
    html = get(api, f"/dags/{ALLOWED}/runs", "support").text
    assert "2 min 05 s" in html and "failed 1" in html
    row = _row_of(html, RUN_ID)  # no Airflow run of it any more: listed by its start, Airflow's word for its end
    assert f'title="{RUN_ID}">2026-11-20 01:00:00 UTC</a>' in row and '<span class="bad">failed</span>' in row


def test_runs_are_listed_by_their_note_in_airflow_with_the_raw_id_on_hover_and_airflows_state_now(api):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(DagRun(OTHER, RUN_ID, run_type="manual", state="running", note="Night after the HR upload",
                           logical_date=datetime(2026, 11, 20, 1, tzinfo=UTC),
                           run_after=datetime(2026, 11, 20, 1, tzinfo=UTC)))
    row = _row_of(get(api, f"/dags/{OTHER}/runs", "admin").text, RUN_ID)
    assert f'title="{RUN_ID}">Night after the HR upload</a>' in row and ">running</span>" in row
    assert _row_of(get(api, "/", "admin").text, "Report Beta").count("Night after the HR upload") == 1


def test_the_navigation_lists_only_the_integrations_the_user_may_read(api):
    assert get(api, "/", None).status_code == 401
    support = get(api, "/", "support").text
    assert "Report Alpha" in support and "Report Beta" not in support
    admin = get(api, "/", "admin").text
    assert "Report Alpha" in admin and "Report Beta" in admin


def test_an_integration_whose_connection_is_missing_shows_its_own_error_and_the_others_list_normally(api):
    answer = get(api, "/", "admin")
    assert answer.status_code == 200
    broken = html.unescape(_row_of(answer.text, "Report Delta"))
    assert "the Airflow Connection 'psiber_delta_missing' does not exist" in broken
    assert "owner: Airflow administrator" in broken and "no run reported yet" not in broken
    for name in ("Report Alpha", "Report Beta", "Report Gamma"):
        assert RUN_ID in _row_of(answer.text, name)
    runs = get(api, f"/dags/{BROKEN}/runs", "admin")
    assert runs.status_code == 503 and "'psiber_delta_missing' does not exist" in runs.json()["detail"]


def test_course_status_counts_learners_per_course_and_opens_a_course_to_its_learners(api):
    html = get(api, f"/dags/{ALLOWED}/courses", "support").text
    assert "DRV-101" in html and "Defensive Driving" in html and f'href="/sync-report/dags/{ALLOWED}/courses/7"' in html
    html = get(api, f"/dags/{ALLOWED}/courses/7", "support").text
    assert "EE001" in html and "Ann &lt;i&gt;Smith&lt;/i&gt;" in html and "passed" in html and "82.50" in html
    assert "2026-11-19" in html


def _row_of(html: str, text: str) -> str:
    [row] = [row for row in html.split("<tr") if text in row]
    return row


@pytest.mark.parametrize("page", PAGES)
def test_a_school_dags_pages_and_csv_refuse_anonymous_callers_and_users_who_may_not_read_it(api, page):
    assert get(api, page.format(dag=SCHOOL), None).status_code == 401
    assert get(api, page.format(dag=SCHOOL), "hr").status_code == 403
    assert get(api, page.format(dag=SCHOOL), "support").status_code not in (401, 403)


def test_the_navigation_lists_psiber_and_school_integrations_the_user_may_read_with_their_kind(api):
    support = get(api, "/", "support").text
    assert "Report Beta" not in support
    alpha, gamma = _row_of(support, "Report Alpha"), _row_of(support, "Report Gamma")
    assert "<td>PSIber</td>" in alpha and "course status" in alpha
    assert "<td>School MIS</td>" in gamma and "course status" not in gamma  # a school reads no results
    assert '<span class="preview">preview</span>' in gamma and "preview" not in alpha
    hr = get(api, "/", "hr").text
    assert "Report Alpha" in hr and "Report Gamma" not in hr


def test_a_school_preview_is_marked_in_its_runs_and_report_with_school_wording(api):
    runs = get(api, f"/dags/{SCHOOL}/runs", "support").text
    assert '<span class="preview">preview</span>' in _row_of(runs, RUN_ID)
    assert "preview" not in _row_of(get(api, f"/dags/{ALLOWED}/runs", "support").text, RUN_ID)
    html = get(api, f"/dags/{SCHOOL}/runs/{RUN_ID}", "support").text
    assert 'id="preview"' in html and "nothing was written to" in html and "School MIS integration" in html
    assert "External ID or course ID number" in html and "Employee number" not in html
    assert 'id="preview"' not in get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}", "support").text


def test_course_status_of_a_school_dag_says_it_applies_to_psiber_integrations_only(api):
    answer = get(api, f"/dags/{SCHOOL}/courses", "support")
    assert answer.status_code == 200
    assert "Course status applies to PSIber integrations only" in answer.text
    assert f'href="/sync-report/dags/{SCHOOL}/runs"' in answer.text


OUTCOME_ROW = re.compile(r'<tr(?: class="problem")?><td>([a-z]+)</td><td>([^<]*)</td><td>[^<]*</td><td>([a-z_]+)</td>')


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)
def test_a_real_school_runs_report_and_csv_then_a_rollover_preview_marked_with_deletions_first(
        api, school_run):  # noqa: F811 - the imported fixture
    first = school_run()
    report = f"/dags/{DEMO_SCHOOL}/runs/{quote(first['run_id'], safe='')}"
    assert get(api, report, "hr").status_code == 403
    html = get(api, report, "admin").text
    assert "Sync report: Greenfield High" in html and 'id="preview"' not in html
    for flow in ("people", "classes", "enrolments"):
        assert f"<th>{flow}</th>" in html
    assert "created&nbsp;<b>326</b>" in html and "created&nbsp;<b>32</b>" in html
    conflict = _row_of(html, f"<td>{STUDENT_EMAIL_TAKEN}</td>")
    assert "conflict" in conflict and "Moodle user #" in conflict
    assert re.search(rf"<td>{STUDENT_EMAIL_TAKEN}</td><td>\w+ [^<]+</td>", conflict)  # named from the run's extract
    invalid = _row_of(html, f"<td>{STUDENT_WITHOUT_EMAIL}</td>")
    assert "e-mail is missing" in invalid and "school MIS administrator" in invalid
    found = OUTCOME_ROW.findall(get(api, f"{report}?q=sub-2027-8-math", "admin").text)
    assert {flow for flow, _, _ in found} == {"classes", "enrolments"}
    assert all("SUB-2027-8-MATH" in record for _, record, _ in found)
    skipped = OUTCOME_ROW.findall(get(api, f"{report}?flow=classes&action=skipped", "admin").text)
    assert ("classes", "REG-2027-8A", "skipped") in skipped and {a for _, _, a in skipped} == {"skipped"}
    rows = list(csv.DictReader(io.StringIO(get(api, f"{report}/outcomes.csv", "admin").text)))
    assert len(rows) == len(first["outcomes"])
    assert {(r["flow"], r["record"], r["action"]) for r in rows} == \
        {(o["flow"], o["record"] or "", o["action"]) for o in first["outcomes"]}

    with school_run.engine.begin() as connection:  # the MIS changes a rollover preview should list
        connection.execute(text("UPDATE school_person SET status = 'left' WHERE external_id = 'S-2010'"))
        connection.execute(text("DELETE FROM school_membership WHERE person_external_id = 'S-2001' "
                                "AND class_external_id = 'SUB-2027-8-MATH'"))
        connection.execute(text("UPDATE school_class SET provisioning_override = 'disabled' "
                                "WHERE external_id = 'SUB-2027-9-ENGL'"))
    preview = school_run({"synchronisation": "disabled", "deletion": {"enrolments": True, "courses": "delete"}},
                         preview=True)
    assert preview["complete"] and preview["moodle_writes"] == 0
    runs = get(api, f"/dags/{DEMO_SCHOOL}/runs", "admin").text
    assert '<span class="preview">preview</span>' in _row_of(runs, preview["run_id"])
    assert "preview" not in _row_of(runs, first["run_id"])
    html = get(api, f"/dags/{DEMO_SCHOOL}/runs/{quote(preview['run_id'], safe='')}", "admin").text
    assert 'id="preview"' in html
    listed = [(flow, record, action) for flow, record, action in OUTCOME_ROW.findall(html)]
    would = [action for _, _, action in listed if action.startswith("would_")]
    assert would == sorted(would, key=PREVIEW_ORDER.index)  # deletions first
    assert list(dict.fromkeys(would)) == ["would_delete", "would_unenrol", "would_suspend"]
    assert ("classes", "SUB-2027-9-ENGL", "would_delete") in listed
    assert ("enrolments", "S-2001 in SUB-2027-8-MATH", "would_unenrol") in listed
    assert ("people", "S-2010", "would_suspend") in listed


@pytest.mark.parametrize(("connection", "reason"), [
    ({"conn_type": "http", "host": "example.org"}, "a source database must be 'sqlite' or 'postgres'"),
    ({"conn_type": "sqlite", "host": "/no/such/folder/reports.db"},
     "the database of the Airflow Connection 'reports_elsewhere' cannot be read (OperationalError"),
])
def test_a_report_database_of_the_wrong_type_or_unreachable_is_named_with_its_owner(connection, reason, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_REPORTS_ELSEWHERE", json.dumps(connection))
    settings = type("Settings", (), {"psiber_conn_id": "reports_elsewhere"})()
    with pytest.raises(UnreadableReports, match="owner") as raised, _database(
            ReportedIntegration("psiber_moodle_x", PSIBER, settings)):
        pass
    assert reason in str(raised.value)


BIG_RUN = "scheduled__2026-11-21T01:00:00+00:00"
BIG = 10_000


@pytest.fixture(scope="module")
def big_report(api):
    """A first night of 10,000 employees created and three problems (written last) in Report Beta's database."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{json.loads(os.environ['AIRFLOW_CONN_PSIBER_BETA'])['host']}")
    outcomes = [{"record": f"EE{n:05d}", "action": "created", "reason": "", "owner": "", "flow": "users"}
                for n in range(BIG)] + [
        {"record": f"BAD{n}", "action": "invalid", "reason": "surname is missing", "owner": "PSIber HR",
         "flow": "users"} for n in range(3)]
    save_run_report(engine, "report_beta", OTHER, {**report(outcomes), "run_id": BIG_RUN}, keep_days=400)
    engine.dispose()
    return f"/dags/{OTHER}/runs/{quote(BIG_RUN, safe='')}"


def test_a_large_report_is_paginated_problems_first_and_page_links_keep_the_filters(api, big_report):
    first = get(api, big_report, "admin").text
    assert OUTCOME_ROW.findall(first)[:4] == [("users", "BAD0", "invalid"), ("users", "BAD1", "invalid"),
                                              ("users", "BAD2", "invalid"), ("users", "EE00000", "created")]
    assert len(OUTCOME_ROW.findall(first)) == PAGE_SIZE and f"page 1 of {-(-(BIG + 3) // PAGE_SIZE)}" in first
    second = OUTCOME_ROW.findall(get(api, f"{big_report}?page=2", "admin").text)
    assert [record for _, record, _ in second] == [f"EE{n:05d}" for n in range(PAGE_SIZE - 3, 2 * PAGE_SIZE - 3)]
    filtered = get(api, f"{big_report}?action=created&page=2", "admin").text
    assert OUTCOME_ROW.findall(filtered)[0] == ("users", f"EE{PAGE_SIZE:05d}", "created")
    assert 'href="?flow=&amp;action=created&amp;owner=&amp;q=&amp;page=3">next</a>' in filtered
    assert 'href="?flow=&amp;action=created&amp;owner=&amp;q=&amp;page=1">previous</a>' in filtered


def test_the_csv_of_a_large_report_streams_every_record_a_chunk_at_a_time(api, big_report):
    answer = get(api, f"{big_report}/outcomes.csv", "admin")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == BIG + 3 and rows[0]["record"] == "BAD0" and rows[-1]["record"] == f"EE{BIG - 1:05d}"
    integration = integrations_by_dag(registered_kinds())[OTHER]
    chunks = list(csv_lines(integration, BIG_RUN, report_store.OutcomeFilter()))
    assert len(chunks) == 1 + -(-(BIG + 3) // CSV_CHUNK)  # the header, then one chunk per read
    assert chunks[0] == "flow,record,name,action,reason,owner,changed_fields\r\n"


def test_one_records_history_lists_every_runs_outcome_for_it_newest_first_with_links_to_each_report(api):
    from sqlalchemy import create_engine

    later = "scheduled__2026-11-22T01:00:00+00:00"
    engine = create_engine(f"sqlite:///{json.loads(os.environ['AIRFLOW_CONN_PSIBER_BETA'])['host']}")
    save_run_report(engine, "report_beta", OTHER, {**report([
        {"record": "EE0010", "action": "created", "reason": "", "owner": "", "flow": "users"},
        {"record": "EE001", "action": "updated", "reason": "changed: email", "owner": "", "flow": "users",
         "changed": ["email"]},
        {"record": "EE001 / DRV-101", "action": "recorded", "reason": "Competent", "owner": "", "flow": "results"},
    ]), "run_id": later, "started_at": "2026-11-22T01:00:00+00:00", "finished_at": "2026-11-22T01:03:00+00:00"},
        keep_days=400)
    engine.dispose()
    page = get(api, f"/dags/{OTHER}/records?q=ee001", "admin").text
    rows = re.findall(r'<a href="([^"]+)" title="([^"]+)">.*?<td>([a-z]+)</td><td>([^<]*)</td><td>[^<]*</td>'
                      r'<td>([a-z_]+)</td>', page, re.S)
    assert [(run_id, flow, record, action) for _, run_id, flow, record, action in rows] == [
        (later, "users", "EE001", "updated"), (later, "results", "EE001 / DRV-101", "recorded"),
        (RUN_ID, "users", "EE001", "created")]
    assert rows[0][0] == f"/sync-report/dags/{OTHER}/runs/{quote(later, safe='')}?q=EE001"
    assert "email" in _row_of(page, "changed: email")
    assert 'id="no-history"' in get(api, f"/dags/{OTHER}/records?q=EE404", "admin").text
    report_page = get(api, f"/dags/{OTHER}/runs/{quote(later, safe='')}?q=EE001", "admin").text
    assert f'href="/sync-report/dags/{OTHER}/records?q=EE001"' in report_page


def test_a_runs_history_names_who_cleared_it_from_the_audit_log_or_tells_the_clear_by_the_tries_start():
    tries = [{"try_number": 0, "started_at": "2026-12-06 02:00:00", "finished_at": "2026-12-06 02:03:00",
              "state": "failed", "failures": [{"task": "check_moodle_site", "error": "Moodle unreachable"}]},
             {"try_number": 1, "started_at": "2026-12-06 09:12:05", "finished_at": "2026-12-06 09:14:00",
              "state": "failed", "failures": []},
             {"try_number": 2, "started_at": "2026-12-06 11:00:00", "finished_at": "2026-12-06 11:02:00",
              "state": "success", "failures": []}]
    clears = [{"at": datetime(2026, 12, 5, 23, 0, tzinfo=UTC), "by": "someone before this run failed"},
              {"at": datetime(2026, 12, 6, 9, 12, tzinfo=UTC), "by": "support"}]
    history = run_history(tries, clears)
    assert [(step["event"], str(step["at"])[:16], step["by"]) for step in history] == [
        ("started", "2026-12-06 02:00", ""), ("failed", "2026-12-06 02:03", ""),
        ("cleared", "2026-12-06 09:12", "support"), ("failed", "2026-12-06 09:14", ""),
        ("cleared", "2026-12-06 11:00", ""), ("succeeded", "2026-12-06 11:02", "")]  # a Clear from the CLI
    assert history[1]["failures"][0]["error"] == "Moodle unreachable"


def test_records_show_the_persons_name_beside_the_key_in_the_report_its_csv_and_the_record_history(api):
    html = get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}", "support").text
    assert "<th>Record</th><th>Name</th>" in html
    assert "<td>EE001</td><td>Ann &lt;i&gt;Smith&lt;/i&gt;</td>" in html and "<td>EE003</td><td>Cy Naidoo</td>" in html
    found = OUTCOME_ROW.findall(get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}?q=naidoo", "support").text)
    assert [record for _, record, _ in found] == ["EE003"]  # found by the name too
    rows = list(csv.DictReader(io.StringIO(get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}/outcomes.csv", "support").text)))
    assert {row["record"]: row["name"] for row in rows}["EE001"] == "Ann <i>Smith</i>"
    history = get(api, f"/dags/{ALLOWED}/records?q=EE003", "support").text
    assert "<td>EE003</td><td>Cy Naidoo</td>" in history


def test_course_status_lists_every_course_with_a_totals_row_and_why_a_course_is_not_counted(api):
    html = get(api, f"/dags/{ALLOWED}/courses", "support").text
    onboarding = _row_of(html, "ONB-1")
    assert "Company Induction" in onboarding and "not counted: completion tracking is off in Moodle" in onboarding
    assert "no linked employee is enrolled" in _row_of(html, "HS-102")
    assert f'href="/sync-report/dags/{ALLOWED}/courses/12"' not in html  # no learner to open
    totals = _row_of(html, 'id="totals"')
    assert "Total of 2 courses counted (1 not counted)" in totals
    assert re.findall(r'<td class="n">(\d+)</td>', totals) == ["1", "0", "1", "1", "0"]
    assert "2026-11-20 01:02:05" in _row_of(html, "DRV-101")  # read when the run's try ended


def test_every_page_links_to_its_own_address_in_airflows_frame_which_airflow_serves(api):
    from moodle_sync_report import SyncReportPlugin

    from sync_common.report_pages import NAV_ROUTE, URL_PREFIX

    [nav] = [view for view in SyncReportPlugin.external_views if view["destination"] == "nav"]
    assert nav["url_route"] == NAV_ROUTE and nav["href"] == f"{URL_PREFIX}/"  # its frame follows the address
    frame = f"/plugin/{NAV_ROUTE}{URL_PREFIX}"
    report_page = get(api, f"/dags/{ALLOWED}/runs/{quote(RUN_ID, safe='')}?q=EE001&page=1", "support").text
    link = f"{frame}/dags/{ALLOWED}/runs/manual__2026-11-20T01:00:00+00:00?q=EE001&amp;page=1"
    assert f'id="page-link" data-airflow-page href="{link}"' in report_page
    assert f'href="{frame}/dags/{ALLOWED}/courses/7"' in get(api, f"/dags/{ALLOWED}/courses/7", "support").text
    assert f'href="{frame}/dags/{ALLOWED}/records?q=EE001"' in get(api, f"/dags/{ALLOWED}/records?q=EE001",
                                                                   "support").text
    client, _ = api
    ui = client.get(html.unescape(link))  # the address bar's URL: Airflow's UI, which opens the path in the frame
    assert ui.status_code == 200 and "<html" in ui.text.lower()


def page_of(api, path: str, user: str | None):
    client, tokens = api
    headers = {"Accept": "text/html,application/xhtml+xml", **(
        {"Authorization": f"Bearer {tokens[user]}"} if user else {})}
    return client.get(f"/sync-report{path}", headers=headers)


@pytest.mark.parametrize(("path", "user", "status", "says"), [
    (f"/dags/{OTHER}/runs/{RUN_ID}", "support", 403, "Your Airflow role may not read this integration"),
    (f"/dags/{ALLOWED}/runs", None, 401, "You are not logged in to Airflow"),
    (f"/dags/{ALLOWED}/runs/manual__1999-01-01", "support", 404, "no sync report for run"),
    (f"/dags/{ALLOWED}/runs/{RUN_ID}?page=0", "support", 422, "page: Input should be greater than or equal to 1"),
    (f"/dags/{BROKEN}/runs", "admin", 503, "the Airflow Connection &#39;psiber_delta_missing&#39; does not exist"),
])
def test_a_page_that_cannot_be_shown_is_a_readable_page_in_the_frame_with_its_status(api, path, user, status, says):
    answer = page_of(api, path, user)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert says in answer.text and "What to do:" in answer.text and '"detail"' not in answer.text


def test_the_csv_and_api_callers_keep_json_errors_with_their_status(api):
    assert page_of(api, f"/dags/{OTHER}/runs/{RUN_ID}/outcomes.csv", "support").json() == {"detail": "Forbidden"}
    answer = get(api, f"/dags/{OTHER}/runs/{RUN_ID}", "support")
    assert answer.status_code == 403 and answer.json() == {"detail": "Forbidden"}
    assert get(api, f"/dags/{ALLOWED}/runs/{RUN_ID}?page=0", "support").status_code == 422


def test_a_server_error_is_a_page_in_the_frame_and_json_for_other_callers():
    from sync_common import report_pages

    class BrokenKind:
        def load(self):
            raise RuntimeError("the integration files cannot be listed")

    app = report_pages.report_app([BrokenKind()])  # type: ignore[list-item]
    app.dependency_overrides[report_pages.can_read_runs.dependency] = lambda: None
    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/dags/psiber_moodle_x/runs", headers={"Accept": "text/html"})
    assert answer.status_code == 500 and "This page could not be shown" in answer.text
    assert "cannot be listed" not in answer.text  # the log has it, not the page
    assert client.get("/dags/psiber_moodle_x/runs").json() == {"detail": "Internal Server Error"}


def test_a_targeted_runs_report_says_which_records_it_synced(api):
    from sqlalchemy import create_engine

    targeted = "manual__2026-11-23T10:00:00+00:00"
    engine = create_engine(f"sqlite:///{json.loads(os.environ['AIRFLOW_CONN_PSIBER_BETA'])['host']}")
    save_run_report(engine, "report_beta", OTHER, {**report([
        {"record": "EE00013", "action": "updated", "reason": "changed: email", "owner": "", "flow": "users"}]),
        "run_id": targeted, "targeted_records": ["EE00013", "EE00020"]}, keep_days=400)
    engine.dispose()
    html = get(api, f"/dags/{OTHER}/runs/{quote(targeted, safe='')}", "admin").text
    assert re.search(r'id="targeted">Targeted run: EE00013, EE00020 ', html)
    assert 'id="targeted"' not in get(api, f"/dags/{OTHER}/runs/{quote(RUN_ID, safe='')}", "admin").text

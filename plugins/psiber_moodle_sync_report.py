"""Airflow UI plugin: each Moodle sync run's report, the runs and the course status, as tabs, for every kind of
integration (``KINDS``: PSIber's and the school MIS's, named here, where both source systems meet).

Pages come from ``sync_common.report_pages`` (mounted on the API server under /sync-report);
each checks the caller's right to read the DAG, since Airflow shows plugin tabs to everyone.
"""

from __future__ import annotations

from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

from psiber.config import load_integrations
from school.config import load_school_integrations
from sync_common.integration_kinds import IntegrationKind
from sync_common.report_pages import URL_PREFIX, report_app

INTEGRATIONS = Path(__file__).resolve().parents[1] / "include" / "integrations"

PSIBER = IntegrationKind(
    label="PSIber", dag_prefix="psiber_moodle_", folder_variable="PSIBER_MOODLE_INTEGRATIONS",
    default_folder=INTEGRATIONS, load=load_integrations, report_conn_id=lambda settings: settings.psiber_conn_id,
    record_search="Employee number or course code", course_status=True)
SCHOOL = IntegrationKind(
    label="School MIS", dag_prefix="school_moodle_", folder_variable="SCHOOL_MOODLE_INTEGRATIONS",
    default_folder=INTEGRATIONS / "school", load=load_school_integrations,
    report_conn_id=lambda settings: settings.school_conn_id, record_search="External ID or course ID number",
    course_status=False)
KINDS = (PSIBER, SCHOOL)
app = report_app(KINDS)


class SyncReportPlugin(AirflowPlugin):
    name = "psiber_moodle_sync_report"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Moodle sync report"}]
    external_views = [
        {"name": "Sync report", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "sync-report"},
        {"name": "Sync runs", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs", "destination": "dag",
         "url_route": "sync-runs"},
        {"name": "Course status", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/courses", "destination": "dag",
         "url_route": "course-status"},
        {"name": "Sync reports", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": "sync-reports"},
    ]

"""Airflow UI plugin: each Moodle sync run's report, the runs and the course status, as tabs, for every registered
kind of integration (``sync_common.integration_kinds.registered_kinds``: each source system's ``kind.py``).

Pages come from ``sync_common.report_pages`` (mounted on the API server under /sync-report);
each checks the caller's right to read the DAG, since Airflow shows plugin tabs to everyone. The navigation view's
frame follows the address bar (``/plugin/sync-reports/<page's path>``), which is each page's address to bookmark.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sync_common.integration_kinds import registered_kinds
from sync_common.report_pages import NAV_ROUTE, URL_PREFIX, report_app

app = report_app(registered_kinds())


class SyncReportPlugin(AirflowPlugin):
    name = "moodle_sync_report"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Moodle sync report"}]
    external_views = [
        {"name": "Sync report", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "sync-report"},
        {"name": "Sync runs", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs", "destination": "dag",
         "url_route": "sync-runs"},
        {"name": "Course status", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/courses", "destination": "dag",
         "url_route": "course-status"},
        {"name": "Record history", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/records", "destination": "dag",
         "url_route": "record-history"},
        {"name": "Sync reports", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": NAV_ROUTE},
    ]

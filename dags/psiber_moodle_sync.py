"""One DAG per integration file in include/integrations/: PSIber employees → Moodle users.

This file only wires tasks; the steps live in plugins/psiber_moodle/user_sync.py.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, dag, get_current_context, task

from moodle.hook import MoodleHook
from psiber_moodle import user_sync
from psiber_moodle.config import Integration, load_integrations
from psiber_moodle.config_errors import ConfigErrorTimetable, describe_config_errors
from psiber_moodle.psiber_db import engine_from_connection
from psiber_moodle.run_files import run_directory
from psiber_moodle.run_summary import build_run_summary, small_summary, write_run_summary
from psiber_moodle.task_failures import fail_fast_unless_transient

INTEGRATIONS_DIR = Path(
    os.environ.get("PSIBER_MOODLE_INTEGRATIONS", Path(__file__).resolve().parents[1] / "include" / "integrations")
)
TASK_RETRIES = int(os.environ.get("PSIBER_MOODLE_TASK_RETRIES", "2"))


def _run_dir(integration: Integration) -> Path:
    return run_directory(integration, get_current_context()["run_id"])


def build_dag(integration: Integration, source: Path) -> DAG:
    @dag(
        dag_id=f"psiber_moodle_{integration.key}",
        description=f"PSIber → Moodle: {integration.name} ({source.name})",
        schedule=integration.schedule if integration.enabled else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=not integration.enabled,
        tags=["psiber", "moodle"],
        params={"allow_mass_suspension": Param(False, type="boolean",
                                               description="Let this run suspend more users than the guard allows.")},
        default_args={"retries": TASK_RETRIES, "retry_delay": timedelta(minutes=1),
                      "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=15)},
        doc_md=__doc__,
    )
    def sync():
        @task
        @fail_fast_unless_transient
        def preflight() -> dict:
            return user_sync.preflight(integration, MoodleHook(integration.moodle_conn_id))

        @task
        def extract_employees() -> dict:
            return user_sync.extract_employees(
                integration, engine_from_connection(integration.psiber_conn_id), _run_dir(integration))

        @task
        @fail_fast_unless_transient
        def validate_employees() -> dict:
            return user_sync.validate_extracted_employees(integration, _run_dir(integration))

        @task
        def transform_employees() -> dict:
            return user_sync.transform_employees(integration, _run_dir(integration))

        @task
        @fail_fast_unless_transient
        def extract_moodle_users() -> dict:
            return user_sync.extract_moodle_users(
                integration, MoodleHook(integration.moodle_conn_id),
                engine_from_connection(integration.psiber_conn_id), _run_dir(integration))

        @task
        @fail_fast_unless_transient
        def plan_user_changes(params: dict | None = None) -> dict:
            return user_sync.plan_users(integration, _run_dir(integration), bool(params["allow_mass_suspension"]))

        @task
        @fail_fast_unless_transient
        def apply_user_changes() -> dict:
            passwords = integration.users.new_user_passwords
            password = (MoodleHook.get_connection(passwords.connection_id).password
                        if passwords.connection_id else None)
            return user_sync.apply_user_changes(
                integration, MoodleHook(integration.moodle_conn_id), _run_dir(integration), password)

        @task
        def record_user_links() -> dict:
            return user_sync.record_user_links(
                integration, engine_from_connection(integration.psiber_conn_id), _run_dir(integration))

        @task(trigger_rule="all_done", retries=0)
        def summarize_run() -> dict:
            context = get_current_context()
            states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
            others = {t: s for t, s in states.get(context["run_id"], {}).items() if t != context["ti"].task_id}
            run_dir = _run_dir(integration)
            summary = build_run_summary(integration, context["run_id"], run_dir, others)
            result = small_summary(summary, write_run_summary(summary, run_dir))
            context["ti"].xcom_push(key="summary", value=result)
            if not summary["complete"]:
                raise RuntimeError(f"run incomplete, tasks not finished: {', '.join(summary['unfinished_tasks'])}")
            return result

        checked = preflight()
        employees = extract_employees() >> validate_employees() >> transform_employees()
        planned = [checked, employees] >> extract_moodle_users() >> plan_user_changes()
        planned >> apply_user_changes() >> record_user_links() >> summarize_run()

    return sync()


def build_config_error_dag(message: str) -> DAG:
    return DAG(dag_id="psiber_moodle_invalid_integration_files", schedule=ConfigErrorTimetable(message),
               start_date=datetime(2026, 1, 1), description=message[:200])


_integrations, _errors = load_integrations(INTEGRATIONS_DIR)
for _path, _integration in _integrations.items():
    globals()[f"psiber_moodle_{_integration.key}"] = build_dag(_integration, _path)
if _errors:
    invalid_integration_files = build_config_error_dag(describe_config_errors(_errors))

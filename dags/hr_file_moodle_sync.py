"""One Airflow DAG per integration file in include/integrations/hr_file/: the employees of an HR system's export
file (CSV or Parquet, in a local folder or object storage) → Moodle users.

This file only wires tasks: the export is read by plugins/hr_file/extract.py, then the users flow runs as PSIber's
does (plugins/psiber/users_flow.py); the DAG around them is sync_common/dag_builder.py's.
"""

from __future__ import annotations

from datetime import timedelta

from hr_file.export_file import HR_EXPORT
from hr_file.kind import KIND

from psiber.users_flow import users_flow_params, wire_users_flow
from sync_common.dag_builder import DagOptions, IntegrationRun, build_dags, step
from sync_common.targeted_records import targeted_records


def options(integration) -> DagOptions:
    return DagOptions(
        schedule=integration.schedule if integration.enabled else None,
        execution_timeout=timedelta(minutes=integration.timeouts.step_minutes),
        paused=not integration.enabled,
        tags=("hr_file", "users"),
        params=users_flow_params(),
    )


def wire(run: IntegrationRun) -> None:
    integration, moodle, state, run_dir, run_id = run.integration, run.moodle, run.database, run.run_dir, run.run_id

    @step
    def check_moodle_site() -> dict:
        from moodle_provider.functions import required_functions
        from sync_common.preflight import preflight

        disabled = None if integration.enabled else (
            f"integration '{integration.name}' is disabled (enabled: false in its file); owner: {KIND.config_owner}")
        return preflight(moodle(), required_functions(integration.flows), disabled=disabled)

    @step
    def extract_employees() -> dict:
        from hr_file.extract import extract_employees as extract

        return extract(integration, state(), run_dir(), run_id(), targeted_records(run.params()))

    wire_users_flow(run, HR_EXPORT, check_moodle_site(), extract_employees())


build_dags(KIND, options, wire, globals())

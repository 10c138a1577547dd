"""The users flow's tasks in a DAG (employees → Moodle users), the same whatever system the employees come from.

A kind wires its own extract task (it leaves the employee frame in the run directory) and its preflight; the users
flow's steps (``psiber.user_sync``: validation, pseudo-e-mail and field matching, the Moodle look-up, plan, apply,
links and quarantine) follow, their messages naming the kind's ``EmployeeSource``. Heavy modules are imported in
the task bodies, not when a DAG file is parsed.

A run triggered with ``sync_only`` (employee numbers: ``sync_common.targeted_records``) is targeted: the kind's
extract reads the listed employees only, and the steps take the source as that run reads it
(``EmployeeSource.targeted``), so that nobody else is taken for a leaver.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param

from sync_common.dag_builder import IntegrationRun, step
from sync_common.employee_source import EmployeeSource
from sync_common.targeted_records import PARAM, targeted_param, targeted_records


def users_flow_params() -> dict[str, Param]:
    """The trigger parameters the users flow reads: every kind running it declares them."""
    return {
        "allow_mass_suspension": Param(False, type="boolean",
                                       description="Let this run suspend more users than the guard allows."),
        "retry_refused": Param(False, type="boolean",
                               description="Send again the records Moodle refused, though unchanged."),
        "full_users_sync": Param(False, type="boolean",
                                 description="Read every linked Moodle account, not only those of employees who "
                                             "changed (as every users.full_sync_every_days)."),
        PARAM: targeted_param("employee numbers"),
    }


def _without_invalid_share_guard(integration):
    """The settings a targeted run validates with: its few employees are listed by choice, each invalid one is
    reported, and a share of them says nothing of the source as a whole."""
    return integration.model_copy(update={"safety": integration.safety.model_copy(update={"max_invalid_share": 1.0})})


def wire_users_flow(run: IntegrationRun, source: EmployeeSource, checked, extracted):
    """The users flow after ``extracted`` (the kind's extract task), its Moodle look-up after ``checked`` (the
    preflight); returns the last task, ``record_user_links``, for what must wait for the accounts' links."""
    integration, moodle, database, run_dir, run_id = run.integration, run.moodle, run.database, run.run_dir, run.run_id
    population = timedelta(minutes=integration.timeouts.population_minutes)  # tasks calling Moodle for everyone

    def run_source() -> EmployeeSource:
        """The source as this run reads it: a targeted run's lists its employees."""
        return source.targeted(targeted_records(run.params()))

    @step
    def validate_employees() -> dict:
        from psiber import user_sync

        of_run = run_source()
        settings = _without_invalid_share_guard(integration) if of_run.listed else integration
        return user_sync.validate_extracted_employees(settings, run_dir(), of_run, database(),
                                                      bool(run.params().get("full_users_sync")))

    @step
    def transform_employees() -> dict:
        from psiber import user_sync

        return user_sync.transform_employees(integration, run_dir(), run_source())

    @step(execution_timeout=population)
    def extract_moodle_users() -> dict:
        from psiber import user_sync

        return user_sync.extract_moodle_users(integration, moodle(), database(), run_dir(),
                                              bool(run.params().get("full_users_sync")), run_source())

    @step
    def plan_user_changes() -> dict:
        from psiber import user_sync

        chosen = run.params()
        return user_sync.plan_users(integration, run_dir(), bool(chosen.get("allow_mass_suspension")),
                                    bool(chosen.get("retry_refused")), source=run_source())

    @step(execution_timeout=population)
    def apply_user_changes() -> dict:
        from airflow.sdk import BaseHook

        from psiber import user_sync

        passwords = integration.users.new_user_passwords
        password = BaseHook.get_connection(passwords.connection_id).password if passwords.connection_id else None
        return user_sync.apply_user_changes(integration, moodle(), database(), run_dir(), password, run_id(),
                                            run_source())

    @step(trigger_rule="all_done_min_one_success")  # keeps the links of users an interrupted apply did create
    def record_user_links() -> dict:
        from psiber import user_sync

        return user_sync.record_user_links(integration, database(), run_dir(), run_id())

    employees = extracted >> validate_employees() >> transform_employees()
    planned = [checked, employees] >> extract_moodle_users() >> plan_user_changes()
    # A record step follows its apply, failed or not, but only once the apply's input was made: with its input
    # failed too (all_done_min_one_success), it and what waits for it do not run.
    return [planned, planned >> apply_user_changes()] >> record_user_links()

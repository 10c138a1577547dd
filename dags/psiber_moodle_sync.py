"""One DAG per integration file in include/integrations/: employees → Moodle users, Moodle courses and
results → PSIber, and ESS (offers, notifications, enrolment requests).

This file only wires tasks; the steps live in plugins/psiber/{user,course,result,ess}_sync.py.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import partial
from pathlib import Path

from airflow.sdk import DAG, Param, dag, get_current_context, task

from moodle_provider.hooks.moodle import MoodleHook
from psiber import course_sync, ess_sync, field_discovery, result_sync, user_sync
from psiber.config import Integration, load_integrations
from psiber.course_status import course_learners_of_run
from psiber.preflight import preflight
from psiber.task_limits import execution_timeouts
from sync_common.config_errors import config_error_dag
from sync_common.database import engine_from_connection
from sync_common.moodle_calls import call_recording_callbacks, counted
from sync_common.run_files import run_directory
from sync_common.summarize import summarize_run as summarize
from sync_common.task_failures import fail_fast_unless_transient, retry_args
from sync_common.write_lock import integration_write_lock

# A task's XCom is its return value alone: the keys of the dict it returns are not pushed one by one as well
# (each one more call to Airflow's API and row in its database, for every task instance of a night).
step = partial(task, multiple_outputs=False)

INTEGRATIONS_DIR = Path(
    os.environ.get("PSIBER_MOODLE_INTEGRATIONS", Path(__file__).resolve().parents[1] / "include" / "integrations")
)


def build_dag(integration: Integration, source: Path) -> DAG:
    flows = set(integration.flows)
    limits = execution_timeouts(integration)

    def moodle() -> MoodleHook:
        return counted(MoodleHook(integration.moodle_conn_id))

    def psiber():
        return engine_from_connection(integration.psiber_conn_id)

    def run_id() -> str:
        return get_current_context()["run_id"]

    def run_dir() -> Path:
        return run_directory(integration, run_id())

    @dag(
        dag_id=f"psiber_moodle_{integration.key}",
        description=f"PSIber ↔ Moodle: {integration.name} ({source.name})",
        schedule=integration.schedule if integration.enabled else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=not integration.enabled,
        tags=["psiber", "moodle", *integration.flows],
        params={
            "allow_mass_suspension": Param(False, type="boolean",
                                           description="Let this run suspend more users than the guard allows."),
            "retry_refused": Param(False, type="boolean",
                                   description="Send again the records Moodle refused, though unchanged."),
            "full_results_sync": Param(False, type="boolean",
                                       description="Read every linked user's results, not only recent changes."),
        },
        default_args={**retry_args(), "execution_timeout": limits.step,
                      **call_recording_callbacks(lambda run: run_directory(integration, run))},
        doc_md=__doc__,
    )
    def sync():
        @step()
        @fail_fast_unless_transient
        def check_moodle_site() -> dict:
            return preflight(integration, moodle())

        @step()
        @fail_fast_unless_transient
        def extract_employees() -> dict:
            return user_sync.extract_employees(integration, psiber(), run_dir())

        @step()
        @fail_fast_unless_transient
        def validate_employees() -> dict:
            return user_sync.validate_extracted_employees(integration, run_dir())

        @step()
        @fail_fast_unless_transient
        def transform_employees() -> dict:
            return user_sync.transform_employees(integration, run_dir())

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def extract_moodle_users() -> dict:
            return user_sync.extract_moodle_users(integration, moodle(), psiber(), run_dir())

        @step()
        @fail_fast_unless_transient
        def plan_user_changes(params: dict | None = None) -> dict:
            return user_sync.plan_users(integration, run_dir(), bool(params["allow_mass_suspension"]),
                                        bool(params["retry_refused"]))

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def apply_user_changes() -> dict:
            passwords = integration.users.new_user_passwords
            password = (MoodleHook.get_connection(passwords.connection_id).password
                        if passwords.connection_id else None)
            return user_sync.apply_user_changes(integration, moodle(), psiber(), run_dir(), password, run_id())

        @step(trigger_rule="all_done_min_one_success")  # keeps the links of users an interrupted apply did create
        @fail_fast_unless_transient
        def record_user_links() -> dict:
            return user_sync.record_user_links(integration, psiber(), run_dir(), run_id())

        @step()
        @fail_fast_unless_transient
        def extract_moodle_courses() -> dict:
            return course_sync.extract_moodle_courses(moodle(), run_dir())

        @step()
        @fail_fast_unless_transient
        def plan_course_changes() -> dict:
            return course_sync.plan_courses(integration, psiber(), run_dir())

        @step()
        @fail_fast_unless_transient
        def discover_custom_fields() -> dict:
            return field_discovery.discover_custom_fields(integration, moodle(), run_dir())

        @step()
        @fail_fast_unless_transient
        def load_courses() -> dict:
            engine = psiber()
            with integration_write_lock(engine, integration.key, run_id()):
                return course_sync.load_courses(integration, engine, run_dir())

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def find_changed_learners(params: dict | None = None) -> dict:
            return result_sync.find_changed_learners(integration, moodle(), psiber(), run_dir(),
                                                     bool(params["full_results_sync"]))

        @step()
        @fail_fast_unless_transient
        def plan_grade_reads() -> list[list[int]]:
            return result_sync.grade_read_batches(integration, run_dir())

        @step(pool=integration.results.moodle_pool or "default_pool", execution_timeout=limits.grade_reads,
              max_active_tis_per_dagrun=integration.results.max_parallel_reads)
        @fail_fast_unless_transient
        def read_course_grades(course_ids: list[int]) -> dict:
            return result_sync.read_course_grades(moodle(), run_dir(), course_ids)

        @step(trigger_rule="none_failed")  # also after a site with no course to read grades from
        @fail_fast_unless_transient
        def plan_completion_reads() -> list[list[int]]:
            return result_sync.completion_read_batches(integration, run_dir())

        @step(pool=integration.results.moodle_pool or "default_pool", execution_timeout=limits.completion_reads,
              max_active_tis_per_dagrun=integration.results.max_parallel_reads)
        @fail_fast_unless_transient
        def read_completions(user_ids: list[int]) -> dict:
            return result_sync.read_completions(integration, moodle(), psiber(), run_dir(), user_ids)

        @step(trigger_rule="none_failed")  # also when no user was active since the last run
        @fail_fast_unless_transient
        def plan_result_changes() -> dict:
            return result_sync.plan_result_changes(integration, psiber(), run_dir())

        @step()
        @fail_fast_unless_transient
        def load_results() -> dict:
            engine = psiber()
            with integration_write_lock(engine, integration.key, run_id()):
                return result_sync.load_results(integration, engine, run_dir())

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def refresh_ess_offers() -> dict:
            return ess_sync.refresh_ess_offers(integration, psiber(), run_dir(), run_id())

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def read_ess_assessments() -> dict:
            return ess_sync.read_ess_assessments(integration, moodle(), psiber(), run_dir())

        @step()
        @fail_fast_unless_transient
        def notify_ess_assessments() -> dict:
            return ess_sync.notify_ess_assessments(integration, psiber(), run_dir(), run_id())

        @step(execution_timeout=limits.population)
        @fail_fast_unless_transient
        def enrol_ess_requests() -> dict:
            return ess_sync.enrol_ess_requests(integration, moodle(), psiber(), run_dir(), run_id())

        @step(trigger_rule="all_done_min_one_success")  # writes back what an interrupted enrolment did in Moodle
        @fail_fast_unless_transient
        def record_ess_requests() -> dict:
            return ess_sync.record_ess_requests(integration, psiber(), run_dir(), run_id())

        @step(trigger_rule="all_done", retries=0)
        @fail_fast_unless_transient
        def summarize_run() -> dict:
            return summarize(integration, psiber(), run_dir(), course_learners_of_run)

        checked = check_moodle_site()
        results_wait_for = []
        if "users" in flows:
            employees = extract_employees() >> validate_employees() >> transform_employees()
            planned = [checked, employees] >> extract_moodle_users() >> plan_user_changes()
            # A record step follows its apply, failed or not, but only once the apply's input was made: with its
            # input failed too (all_done_min_one_success), it and what waits for it do not run.
            users_linked = [planned, planned >> apply_user_changes()] >> record_user_links()
            results_wait_for.append(users_linked)
        if "courses" in flows:
            courses = checked >> extract_moodle_courses()
            results_wait_for.append(courses >> plan_course_changes() >> load_courses())
            results_wait_for.append(courses >> discover_custom_fields())
        else:
            results_wait_for.append(checked >> discover_custom_fields())
        if "results" in flows:
            learners = find_changed_learners()
            results_wait_for >> learners
            batches = plan_grade_reads()
            learners >> batches
            grades = read_course_grades.expand(course_ids=batches)
            user_batches = plan_completion_reads()
            grades >> user_batches
            read_completions.expand(user_ids=user_batches) >> plan_result_changes() >> load_results()
        if "ess" in flows:  # after the users flow's links and the courses flow's read of Moodle; assessments
            offers = refresh_ess_offers()  # are read once the requests are enrolled, so new students hear of them
            results_wait_for >> offers
            [offers, offers >> enrol_ess_requests()] >> record_ess_requests() >> read_ess_assessments() \
                >> notify_ess_assessments()
        summary = summarize_run().operator
        summary.set_upstream([other for other in summary.dag.tasks if other is not summary])  # waits for all

    return sync()


_integrations, _errors = load_integrations(INTEGRATIONS_DIR)
for _path, _integration in _integrations.items():
    globals()[f"psiber_moodle_{_integration.key}"] = build_dag(_integration, _path)
if _errors:
    invalid_integration_files = config_error_dag("psiber_moodle_invalid_integration_files", _errors)

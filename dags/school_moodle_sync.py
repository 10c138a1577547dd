"""One DAG per school integration file in include/integrations/school/: the school MIS provisions Moodle with users
for its teachers and students, courses for its classes and enrolments for its class memberships.

This file only wires tasks; the steps live in plugins/school/ (mis_extract, people_sync, class_sync,
enrolment_sync, preview). Trigger with ``preview=true`` to see what a run would do without writing to Moodle.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, chain, dag, get_current_context, task

from moodle_provider.hooks.moodle import MoodleHook
from school import class_sync, enrolment_sync, mis_extract, people_sync
from school.config import SchoolIntegration, load_school_integrations
from school.preflight import preflight, stop_if_disabled_meanwhile
from school.preview import list_preview
from school.step_files import hold_for_guard
from sync_common.config_errors import config_error_dag
from sync_common.database import engine_from_connection
from sync_common.moodle_calls import call_recording_callbacks, counted
from sync_common.run_files import run_directory
from sync_common.summarize import summarize_run as summarize
from sync_common.task_failures import fail_fast_unless_transient, retry_args

SCHOOL_INTEGRATIONS_DIR = Path(os.environ.get(
    "SCHOOL_MOODLE_INTEGRATIONS", Path(__file__).resolve().parents[1] / "include" / "integrations" / "school"))
NOTHING_WRITTEN = {"preview": True, "written": 0}


def build_dag(integration: SchoolIntegration, source: Path) -> DAG:
    def moodle() -> MoodleHook:
        return counted(MoodleHook(integration.moodle_conn_id))

    def school():
        return engine_from_connection(integration.school_conn_id)

    def run_id() -> str:
        return get_current_context()["run_id"]

    def run_dir() -> Path:
        return run_directory(integration, run_id())

    def preview(params: dict) -> bool:
        return bool(params["preview"])

    @dag(
        dag_id=f"school_moodle_{integration.key}",
        description=f"School MIS → Moodle: {integration.name} ({source.name})",
        schedule=integration.schedule if integration.scheduled else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,  # unscheduled when not enabled; a preview may still be triggered
        tags=["school", "moodle", integration.synchronisation.value],
        params={
            "preview": Param(False, type="boolean", description="Plan everything, write nothing to Moodle: the "
                             "report lists what the next run would do, deletions first."),
            "retry_refused": Param(False, type="boolean",
                                   description="Send again the people and classes Moodle refused, though unchanged."),
            "allow_mass_changes": Param(False, type="boolean", description="Let this run suspend, delete or "
                                        "unenrol more than the mass-change guard allows."),
        },
        default_args={**retry_args(), "execution_timeout": timedelta(minutes=integration.step_minutes),
                      **call_recording_callbacks(lambda run: run_directory(integration, run))},
        doc_md=__doc__,
    )
    def sync():
        @task
        @fail_fast_unless_transient
        def check_moodle_site(params: dict | None = None) -> dict:
            return preflight(integration, moodle(), preview(params))

        @task
        @fail_fast_unless_transient
        def extract_school() -> dict:
            return mis_extract.extract_school(school(), run_dir())

        @task
        @fail_fast_unless_transient
        def validate_school() -> dict:
            return mis_extract.validate_school(integration, run_dir())

        @task
        @fail_fast_unless_transient
        def read_moodle_users() -> dict:
            return people_sync.read_moodle_users(integration, moodle(), school(), run_dir())

        @task
        @fail_fast_unless_transient
        def plan_people(params: dict | None = None) -> dict:
            return people_sync.plan_people(integration, run_dir(), bool(params["retry_refused"]))

        @task
        @fail_fast_unless_transient
        def apply_people(params: dict | None = None) -> dict:
            if preview(params):
                return NOTHING_WRITTEN
            stop_if_disabled_meanwhile(source, run_dir(), ["school_people_plan.json", "school_class_plan.json"])
            return people_sync.apply_people(integration, moodle(), school(), run_dir(), run_id())

        @task(trigger_rule="all_done_min_one_success")  # keeps the links of accounts an interrupted apply did create
        @fail_fast_unless_transient
        def record_user_links() -> dict:
            return people_sync.record_user_links(integration, school(), run_dir(), run_id())

        @task
        @fail_fast_unless_transient
        def read_moodle_courses() -> dict:
            return class_sync.read_moodle_courses(integration, moodle(), school(), run_dir())

        @task
        @fail_fast_unless_transient
        def plan_classes(params: dict | None = None) -> dict:
            return class_sync.plan_classes(integration, run_dir(), bool(params["retry_refused"]))

        @task
        @fail_fast_unless_transient
        def check_mass_changes(params: dict | None = None) -> dict:
            return hold_for_guard(run_dir(), ["school_people_plan.json", "school_class_plan.json"],
                                  allow_mass_changes=bool(params["allow_mass_changes"]), preview=preview(params))

        @task
        @fail_fast_unless_transient
        def apply_classes(params: dict | None = None) -> dict:
            if preview(params):
                return NOTHING_WRITTEN
            stop_if_disabled_meanwhile(source, run_dir(), ["school_class_plan.json"])
            return class_sync.apply_classes(integration, moodle(), school(), run_dir(), run_id())

        @task(trigger_rule="all_done_min_one_success")  # keeps the links of courses an interrupted apply did create
        @fail_fast_unless_transient
        def record_course_links() -> dict:
            return class_sync.record_course_links(integration, school(), run_dir(), run_id())

        @task
        @fail_fast_unless_transient
        def read_enrolments() -> dict:
            return enrolment_sync.read_enrolments(integration, moodle(), run_dir())

        @task
        @fail_fast_unless_transient
        def plan_enrolments(params: dict | None = None) -> dict:
            return enrolment_sync.plan_enrolments_step(integration, school(), run_dir(),
                                                       bool(params["allow_mass_changes"]), preview(params))

        @task
        @fail_fast_unless_transient
        def apply_enrolments(params: dict | None = None) -> dict:
            if preview(params):
                return NOTHING_WRITTEN
            stop_if_disabled_meanwhile(source, run_dir(), ["school_enrolment_plan.json"])
            return enrolment_sync.apply_enrolments(integration, moodle(), school(), run_dir(), run_id())

        @task
        @fail_fast_unless_transient
        def list_next_run(params: dict | None = None) -> dict:
            return list_preview(run_dir()) if preview(params) else {"preview": False}

        @task(trigger_rule="all_done", retries=0)
        @fail_fast_unless_transient
        def summarize_run() -> dict:
            return summarize(integration, school(), run_dir())

        people_written, classes_written = apply_people(), apply_classes()
        users_linked, courses_linked = record_user_links(), record_course_links()
        guards_checked = check_mass_changes()
        # Users and courses are both planned (and their guards checked) before either is written.
        chain(check_moodle_site(), extract_school(), validate_school(), read_moodle_users(), plan_people(),
              read_moodle_courses(), plan_classes(), guards_checked, people_written, users_linked)
        [people_written, users_linked] >> classes_written  # each write waits for the one before it, never after
        # A failed write: the links record what it did make; a write that never ran (its input failed too,
        # all_done_min_one_success): nothing to record, and the links step does not run.
        guards_checked >> users_linked
        [people_written, classes_written] >> courses_linked
        enrolments = read_enrolments()
        [classes_written, courses_linked] >> enrolments
        chain(enrolments, plan_enrolments(), apply_enrolments(), list_next_run())
        summary = summarize_run().operator
        summary.set_upstream([other for other in summary.dag.tasks if other is not summary])  # waits for all

    return sync()


_integrations, _errors = load_school_integrations(SCHOOL_INTEGRATIONS_DIR)
for _path, _integration in _integrations.items():
    globals()[f"school_moodle_{_integration.key}"] = build_dag(_integration, _path)
if _errors:
    invalid_school_integration_files = config_error_dag("school_moodle_invalid_integration_files", _errors)

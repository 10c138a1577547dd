"""One DAG per school integration file in include/integrations/school/: the school MIS provisions Moodle with users
for its teachers and students, courses for its classes and enrolments for its class memberships.

This file only wires tasks; the steps live in plugins/school/ (mis_extract, people_sync, class_sync,
enrolment_sync, preview), the DAG around them in sync_common/dag_builder.py. Trigger with ``preview=true`` to see
what a run would do without writing to Moodle.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, chain

from school.kind import KIND
from sync_common.dag_builder import DagOptions, IntegrationRun, build_dags, step
from sync_common.targeted_records import PARAM, targeted_param, targeted_records

NOTHING_WRITTEN = {"preview": True, "written": 0}


def options(integration) -> DagOptions:
    return DagOptions(
        schedule=integration.schedule if integration.scheduled else None,
        execution_timeout=timedelta(minutes=integration.step_minutes),
        paused=False,  # unscheduled when not enabled; a preview may still be triggered
        tags=("school", "moodle", integration.synchronisation.value),
        params={
            "preview": Param(False, type="boolean", description="Plan everything, write nothing to Moodle: the "
                             "report lists what the next run would do, deletions first."),
            "retry_refused": Param(False, type="boolean",
                                   description="Send again the people and classes Moodle refused, though unchanged."),
            "allow_mass_changes": Param(False, type="boolean", description="Let this run suspend, delete or "
                                        "unenrol more than the mass-change guard allows."),
            PARAM: targeted_param("people's External IDs (their accounts and enrolments in their classes)"),
        },
        preview_param="preview",
    )


def wire(run: IntegrationRun) -> None:
    integration, moodle, school, run_dir, run_id = run.integration, run.moodle, run.database, run.run_dir, run.run_id

    def preview() -> bool:
        return bool(run.params()["preview"])

    def stop_if_disabled_meanwhile(*plans: str) -> None:
        from school.preflight import stop_if_disabled_meanwhile as stop

        stop(run.source, run_dir(), list(plans))

    @step
    def check_moodle_site() -> dict:
        from school.preflight import preflight

        return preflight(integration, moodle(), preview())

    @step
    def extract_school() -> dict:
        from school import mis_extract

        return mis_extract.extract_school(school(), run_dir(), targeted_records(run.params()))

    @step
    def validate_school() -> dict:
        from school import mis_extract

        return mis_extract.validate_school(integration, run_dir())

    @step
    def read_moodle_users() -> dict:
        from school import people_sync

        return people_sync.read_moodle_users(integration, moodle(), school(), run_dir())

    @step
    def plan_people() -> dict:
        from school import people_sync

        return people_sync.plan_people(integration, run_dir(), bool(run.params()["retry_refused"]))

    @step
    def apply_people() -> dict:
        from school import class_sync, people_sync

        if preview():
            return NOTHING_WRITTEN
        stop_if_disabled_meanwhile(people_sync.PLAN, class_sync.PLAN)
        return people_sync.apply_people(integration, moodle(), school(), run_dir(), run_id())

    @step(trigger_rule="all_done_min_one_success")  # keeps the links of accounts an interrupted apply did create
    def record_user_links() -> dict:
        from school import people_sync

        return people_sync.record_user_links(integration, school(), run_dir(), run_id())

    @step
    def read_moodle_courses() -> dict:
        from school import class_sync

        return class_sync.read_moodle_courses(integration, moodle(), school(), run_dir())

    @step
    def plan_classes() -> dict:
        from school import class_sync

        return class_sync.plan_classes(integration, run_dir(), bool(run.params()["retry_refused"]))

    @step
    def check_mass_changes() -> dict:
        from school import class_sync, people_sync
        from school.step_files import hold_for_guard

        return hold_for_guard(run_dir(), [people_sync.PLAN, class_sync.PLAN],
                              allow_mass_changes=bool(run.params()["allow_mass_changes"]), preview=preview())

    @step
    def apply_classes() -> dict:
        from school import class_sync

        if preview():
            return NOTHING_WRITTEN
        stop_if_disabled_meanwhile(class_sync.PLAN)
        return class_sync.apply_classes(integration, moodle(), school(), run_dir(), run_id())

    @step(trigger_rule="all_done_min_one_success")  # keeps the links of courses an interrupted apply did create
    def record_course_links() -> dict:
        from school import class_sync

        return class_sync.record_course_links(integration, school(), run_dir(), run_id())

    @step
    def read_enrolments() -> dict:
        from school import enrolment_sync

        return enrolment_sync.read_enrolments(integration, moodle(), run_dir())

    @step
    def plan_enrolments() -> dict:
        from school import enrolment_sync

        return enrolment_sync.plan_enrolments_step(integration, school(), run_dir(),
                                                   bool(run.params()["allow_mass_changes"]), preview())

    @step
    def apply_enrolments() -> dict:
        from school import enrolment_sync

        if preview():
            return NOTHING_WRITTEN
        stop_if_disabled_meanwhile(enrolment_sync.PLAN)
        return enrolment_sync.apply_enrolments(integration, moodle(), school(), run_dir(), run_id())

    @step
    def list_next_run() -> dict:
        from school.preview import list_preview

        return list_preview(run_dir()) if preview() else {"preview": False}

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


build_dags(KIND, options, wire, globals())

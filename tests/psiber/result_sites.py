"""Moodle stand-in sites for the results flow's tests: the two Report Builder reports as the README tells an
administrator to make them, and the results steps run in the DAG's order for either path."""

from __future__ import annotations

from moodle_stand_in.reportbuilder import add_report
from psiber import course_sync, result_sync
from psiber.config import Integration
from psiber.result_read_tasks import results_from_report

ENROLMENT_COLUMNS = ["course:idnumber", "course:shortname", "user:fullnamewithlink", "user:username",
                     "user:idnumber", "user:email", "enrolment:timestarted", "completion:completed",
                     "completion:timecompleted", "completion:grade"]
USER_ACCESS_COLUMNS = ["user:fullnamewithlink", "user:username", "user:idnumber", "user:lastaccess"]


def add_result_reports(moodle, token_user_zone: str = "UTC") -> dict[str, int]:
    """The enrolment-results and user-access reports, shared with everyone, sorted on unique columns, with the
    filters the results flow sets; the token user's time zone, which their dates are written in."""
    moodle.users[moodle.token_user_id]["timezone"] = token_user_zone
    enrolments = add_report(moodle, "HR results", "participants", ENROLMENT_COLUMNS,
                            sorting=["course:shortname", "user:username"],
                            filters=["completion:timecompleted", "completion:completed"])
    access = add_report(moodle, "HR users last access", "users", USER_ACCESS_COLUMNS, sorting=["user:username"],
                        filters=["user:lastaccess"])
    return {"enrolment_results": enrolments["id"], "user_access": access["id"]}


def sync_results(settings: Integration, hook, engine, run_dir, *, full: bool, now: int) -> dict:
    """A night's courses and results steps, in the order the DAG runs them for ``settings``; the loaded counts."""
    course_sync.extract_moodle_courses(hook, run_dir)
    course_sync.plan_courses(settings, engine, run_dir)
    course_sync.load_courses(settings, engine, run_dir)
    result_sync.find_changed_learners(settings, hook, engine, run_dir, full=full, now=now)

    def grades() -> None:
        for batch in result_sync.grade_read_batches(settings, run_dir):
            result_sync.read_course_grades(hook, run_dir, batch)

    def completions() -> None:
        for batch in result_sync.completion_read_batches(settings, run_dir):
            result_sync.read_completions(settings, hook, engine, run_dir, batch)

    for read in (completions, grades) if results_from_report(settings) else (grades, completions):
        read()
    result_sync.plan_result_changes(settings, engine, run_dir)
    return result_sync.load_results(settings, engine, run_dir)

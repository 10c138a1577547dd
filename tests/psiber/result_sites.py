"""Moodle stand-in sites for the results flow's tests: a company's learners and courses, and the results steps run
in the DAG's order for either path."""

from __future__ import annotations

from random import Random

from psiber import course_sync, result_sync
from psiber.config import Integration
from psiber.psiber_db import select_employees, upsert_user_links
from psiber.result_read_tasks import results_from_report


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


def company_site(moodle, engine, settings: Integration, employees: int, when: int) -> list[int]:
    """The benchmark's company in small: ``employees`` linked learners, a course per 33 of them, each learner in 6
    courses, 4 in 5 of those completed with a grade at ``when``; the course ids."""
    rng = Random(employees)
    category = moodle.add_category("Driver Training")["id"]
    courses = [moodle.add_course(f"C{n:03d}", categoryid=category, idnumber=f"C{n:03d}", startdate=when - 90 * 86_400,
                                 customfields={"passrate": "60"})["id"] for n in range(max(6, employees // 33))]
    links = []
    for row in select_employees(engine, None).head(employees).itertuples():
        user = moodle.add_user(username=f"emp{row.employee_id}@example.com", email=f"emp{row.employee_id}@example.com",
                               idnumber=str(row.employee_number))["id"]
        links.append((int(row.employee_id), user, f"emp{row.employee_id}@example.com"))
        for course_id in rng.sample(courses, 6):
            moodle.enrol(user, course_id)
            if rng.random() < 0.8:
                moodle.set_grade(course_id, user, float(rng.randint(30, 100)), dategraded=when)
                moodle.complete(course_id, user, timecompleted=when)
        moodle.touch(user, when)
    upsert_user_links(engine, settings.key, links)
    return courses

"""Moodle results → PSIber completions and attempts (F4), as pure functions.

The pass/fail rule, for one employee in one course:

* **Completed, with a course total grade below the course's pass mark** → fail.
* **Completed otherwise** (grade at or above the pass mark, no grade item, or no pass mark
  known) → pass: Moodle's completion is its "passed".
* **Not completed, the course has ended, and the course total is below the pass mark** → fail
  (a final grade below the passing grade).
* **Anything else** (in progress, not graded, course still running) → no attempt yet.

The pass mark is the course's PSIber "min pass rate" (a percentage, from the matched course
custom field). The grade is the course total as a percentage of its range; a 0–0 range (a
course without grade items) gives no grade. Date of attempt = Moodle's completion time, else the
grading time, else the date of sync, each as a day in the site's time zone (the integration's
``timezone``).

An attempt is keyed by the integration, course, user, verdict and grade, so syncing the same
result again finds the same key (one attempt) whatever dates Moodle reports on the way, and a
changed result makes a new key (a new attempt). Attempts captured by hand in PSIber are never
read, changed or sent to Moodle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from sync_common.outcomes import Outcome

PASS, FAIL = "pass", "fail"


def _empty_range(grademin: float | None, grademax: float | None) -> bool:
    return grademax is None or float(grademax) == float(grademin or 0)


def grade_percent(grade: float | None, grademin: float | None, grademax: float | None) -> float | None:
    """The grade as a percentage of its range; None without a grade or a range to measure it in."""
    if grade is None or grademax is None or _empty_range(grademin, grademax):
        return None
    low = float(grademin or 0)
    return round((float(grade) - low) / (float(grademax) - low) * 100, 2)


def without_empty_range(total: dict) -> dict:
    """A course total whose range is empty is no grade.

    A course without grade items has a 0–0 course total (natural aggregation of nothing), and
    Moodle stores a teacher's override there as 0: nothing can be judged from it, and it is not
    a grade outside its range either. The grading time stays: the learner was still graded.
    """
    return {**total, "graderaw": None} if _empty_range(total.get("grademin"), total.get("grademax")) else total


def course_verdict(completed: bool, percent: float | None, pass_mark: float | None, course_ended: bool) -> str | None:
    """Pass, fail or None (no attempt yet), by the rule in this module's docstring."""
    below = percent is not None and pass_mark is not None and percent < float(pass_mark)
    if completed:
        return FAIL if below else PASS
    if course_ended and below:
        return FAIL
    return None


@dataclass
class ResultPlan:
    attempts: list[dict] = field(default_factory=list)
    completions: list[dict] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    in_progress: int = 0


def _day(timestamp: int | None, fallback: date, zone: tzinfo) -> date:
    return datetime.fromtimestamp(int(timestamp), zone).date() if timestamp else fallback


def plan_results(
    *,
    integration_key: str,
    links: dict[int, tuple[int, str]],
    courses: dict[int, dict],
    grades: list[dict],
    completions: list[dict],
    changed_since: int,
    pass_result: str,
    fail_result: str,
    sync_date: date,
    now: int,
    zone: tzinfo = UTC,
) -> ResultPlan:
    """Attempts and completions for the (user, course) pairs Moodle reports as changed.

    ``links``: Moodle user id → (employee id, employee number). ``courses``: Moodle course id →
    {course_code, min_pass_rate, enddate}. ``grades``: course totals {courseid, userid,
    graderaw, grademin, grademax, gradedategraded}. ``completions``: {courseid, userid,
    completed, timecompleted} for the users whose activity was read this run.
    """
    plan = ResultPlan()
    grade_of = {(int(g["courseid"]), int(g["userid"])): g for g in grades}
    completion_of = {(int(c["courseid"]), int(c["userid"])): c for c in completions}
    graded_lately = {pair for pair, g in grade_of.items() if int(g.get("gradedategraded") or 0) > changed_since}
    for course_id, user_id in sorted(set(completion_of) | graded_lately):
        if user_id not in links:
            continue
        employee_id, employee_number = links[user_id]
        course = courses.get(course_id)
        if course is None:
            plan.outcomes.append(Outcome(f"{employee_number} / Moodle course #{course_id}", "skipped",
                                         "the course is not in PSIber (see the courses flow)", flow="results"))
            continue
        grade = grade_of.get((course_id, user_id), {})
        completion = completion_of.get((course_id, user_id), {})
        percent = grade_percent(grade.get("graderaw"), grade.get("grademin"), grade.get("grademax"))
        ended = bool(course.get("enddate")) and int(course["enddate"]) < now
        verdict = course_verdict(bool(completion.get("completed")), percent, course.get("min_pass_rate"), ended)
        if verdict is None:
            plan.in_progress += 1
            continue
        moodle_time = completion.get("timecompleted") or grade.get("gradedategraded")
        result = pass_result if verdict == PASS else fail_result
        attempt_date = _day(moodle_time, sync_date, zone)
        plan.attempts.append({
            "attempt_key": f"moodle:{integration_key}:{course_id}:{user_id}:{verdict}:{percent}",
            "employee_id": employee_id, "course_code": course["course_code"], "attempt_date": attempt_date,
            "result": result, "grade": percent, "record": f"{employee_number} / {course['course_code']}",
        })
        plan.completions.append({"attempt_key": plan.attempts[-1]["attempt_key"], "employee_id": employee_id,
                                 "course_code": course["course_code"], "completed_on": attempt_date,
                                 "result": result})
    return plan

"""Course status: per course and linked employee, what the results flow last read from Moodle.

Built from the files the results flow already writes in the run directory, so it costs no
Moodle call: each course's grade report (``grades/``: every active student of every course,
read each night, so it is the enrolment list too), the completion reads (``completions/``: the
learners active since the last run), and the verdicts planned and loaded (``result_plan.json``).
A night reads only part of this, so each run merges what it read into the rows kept from
earlier runs (``merge_learners``). Every course read is listed, those whose learners the totals leave out
with why (``not_counted``). The sync report stores the rows (``sync_common.report_store``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from psiber.config import Integration
from psiber.course_plan import course_code
from psiber.course_sync import MOODLE_COURSES
from psiber.result_plan import grade_percent
from psiber.result_sync import LEARNERS, LOADED, planned_attempts
from psiber.user_sync import EMPLOYEES, settled_of_run
from sync_common.moodle_rules import SITE_FORMAT
from sync_common.report_store import CourseReads, Pair, course_learners_of, stored_course_learner_keys
from sync_common.run_files import RunPath, read_frame, read_json, sorted_files

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_COMPARED = ("course_code", "course_name", "employee_number", "learner_name", "completed", "completed_on", "grade",
             "result", "passed", "result_on")


@dataclass
class RunReads:
    """What one run read from Moodle about courses and learners."""

    courses: dict[int, tuple[str, str]] = field(default_factory=dict)  # course id → (code, name)
    not_counted: dict[int, str] = field(default_factory=dict)  # course id → why the totals leave its learners out
    learners: dict[int, str] = field(default_factory=dict)  # linked Moodle user id → employee number
    # Moodle user id → name, when the run extracted it: of the learners whose rows it may write (``_names``)
    names: dict[int, str] = field(default_factory=dict)
    grades: dict[Pair, float | None] = field(default_factory=dict)
    fully_read_courses: set[int] = field(default_factory=set)  # their grade report is the whole enrolment list
    completions: dict[Pair, tuple[bool, date | None]] = field(default_factory=dict)
    # result, passed, on, grade:
    results: dict[Pair, tuple[str, int, date | None, float | None]] = field(default_factory=dict)


def _day(value) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


NO_COMPLETION_TRACKING = ("completion tracking is off in Moodle: no completion or result can be read "
                          "(owner: Moodle administrator)")
HIDDEN = ("hidden in Moodle: a learner's list of courses leaves it out, so no completion is read "
          "(owner: Moodle administrator, to show it or remove it)")


def not_counted(course: dict) -> str:
    """Why a Moodle course's learners are left out of the course status' totals, '' when they count."""
    if not course.get("enablecompletion"):
        return NO_COMPLETION_TRACKING
    if not course.get("visible", 1):
        return HIDDEN
    return ""


def read_run(run_dir: RunPath, zone: ZoneInfo, pass_result: str, grade_reads_complete: bool) -> RunReads | None:
    """The results flow's reads of this run, or None when it did not get as far as reading.

    ``grade_reads_complete``: every grade-reading task succeeded, so a course read without a
    warning lists all its active students (and a learner missing from it has left the course).
    """
    if not (run_dir / LEARNERS).exists() or not (run_dir / MOODLE_COURSES).exists():
        return None
    learners = read_json(run_dir / LEARNERS)
    reads = RunReads()
    moodle_courses = [c for c in read_json(run_dir / MOODLE_COURSES) if c.get("format") != SITE_FORMAT]
    reads.courses = {int(c["id"]): (course_code(c), str(c.get("fullname") or "")) for c in moodle_courses}
    reads.not_counted = {int(c["id"]): not_counted(c) for c in moodle_courses}
    user_of_employee = {}
    for user_id, (employee_id, number) in learners["links"].items():
        reads.learners[int(user_id)] = str(number)
        user_of_employee[int(employee_id)] = int(user_id)
    # One object per id and per value read, however many rows hold it: ~100,000 rows name 20,000 users and a few
    # thousand (completed, day) and (result, passed, day, grade) values at 20,000 employees.
    shared: dict = {}

    def one(value):
        return shared.setdefault((type(value), value), value)

    # The completions first: their largest file is read whole, so it is read while little else is held.
    for path in sorted_files(run_dir / "completions", "*.json"):
        for entry in read_json(path)["completions"]:
            when = entry.get("timecompleted")
            reads.completions[(one(int(entry["courseid"])), one(int(entry["userid"])))] = one(
                (bool(entry["completed"]), datetime.fromtimestamp(int(when), zone).date() if when else None))
    unreadable = set()
    for path in sorted_files(run_dir / "grades", "*.json"):
        batch = read_json(path)
        for grade in batch["grades"]:
            reads.grades[(one(int(grade["courseid"])), one(int(grade["userid"])))] = grade_percent(
                grade.get("graderaw"), grade.get("grademin"), grade.get("grademax"))
        unreadable |= {outcome["record"] for outcome in batch["outcomes"]}
    if grade_reads_complete:
        reads.fully_read_courses = {int(c) for c in learners["course_ids"] if f"Moodle course #{c}" not in unreadable}
    if (run_dir / LOADED).exists():
        course_of_code = {code: course_id for course_id, (code, _) in reads.courses.items()}
        for attempt in planned_attempts(run_dir):
            course_id = course_of_code.get(attempt["course_code"])
            user_id = user_of_employee.get(int(attempt["employee_id"]))
            if course_id is not None and user_id is not None:
                reads.results[(one(course_id), one(user_id))] = one((
                    attempt["result"], int(attempt["result"] == pass_result), _day(attempt["attempt_date"]),
                    attempt["grade"]))
    reads.names = _names(run_dir, user_of_employee, {user for _, user in (*reads.grades, *reads.completions,
                                                                          *reads.results)})
    return reads


def _names(run_dir: RunPath, user_of_employee: dict[int, int], read: set[int]) -> dict[int, str]:
    """Moodle user id → name, from the run's extract, of the learners whose rows this run may write: those it read,
    and every employee the users flow did not take as settled (``user_sync.settled_of_run``: their row, name
    included, is the one their course status was last written with)."""
    employees = run_dir / EMPLOYEES
    if not employees.exists():
        return {}
    settled = settled_of_run(run_dir)
    wanted = [employee_id for employee_id, user_id in user_of_employee.items()
              if employee_id not in settled or user_id in read]
    frame = read_frame(employees, ["employee_id", "first_name", "surname"])
    frame = frame[frame["employee_id"].astype(int).isin(wanted).to_numpy(dtype=bool)]
    return {user_of_employee[int(employee_id)]: " ".join(str(part) for part in (first, last) if part)
            for employee_id, first, last in zip(frame["employee_id"].tolist(), frame["first_name"].tolist(),
                                                frame["surname"].tolist(), strict=True)}


def course_learners_of_run(integration: Integration, engine: Engine, summary: dict, run_dir: RunPath) -> CourseReads:
    """The course status rows a summarised run changes (``merge_learners``) in its report database ``engine``, and
    every course it read."""
    grades_complete = all(task["state"] == "success" for task in summary.get("tasks", [])
                          if task["task_id"] == "read_course_grades")
    reads = read_run(run_dir, integration.zone, integration.pass_result, grades_complete)
    if reads is None:
        return CourseReads()
    course_ids, user_ids = rows_to_merge(reads, *stored_course_learner_keys(engine, integration.key))
    existing = course_learners_of(engine, integration.key, course_ids, user_ids)
    upserts, removed = merge_learners(existing, reads, summary["run_id"])
    return CourseReads(upserts, removed, listed_courses(reads))


def rows_to_merge(reads: RunReads, stored_courses: list[dict], stored_users: list[dict]) -> tuple[set[int], set[int]]:
    """The courses and users whose stored rows ``merge_learners`` may change: those the run read learners of, and
    those whose stored rows it would change without reading them (course gone or renamed, user unlinked,
    renumbered or renamed). A quiet night that reads few courses so loads few rows, and merges as if it loaded all.
    ``stored_*``: ``stored_course_learner_keys``."""
    course_ids = {course for course, _ in (*reads.grades, *reads.completions, *reads.results)}
    course_ids |= reads.fully_read_courses
    for row in stored_courses:
        course_id = int(row["moodle_course_id"])
        read = reads.courses.get(course_id)
        if read is None or (row["min_code"], row["min_name"]) != read or (row["max_code"], row["max_name"]) != read:
            course_ids.add(course_id)
    user_ids = set()
    for row in stored_users:
        user_id = int(row["moodle_user_id"])
        number, name = reads.learners.get(user_id), reads.names.get(user_id)
        if (number is None or not row["min_number"] == row["max_number"] == number
                or (name is not None and not row["min_name"] == row["max_name"] == name)):
            user_ids.add(user_id)
    return course_ids, user_ids


def listed_courses(reads: RunReads) -> list[dict]:
    """Every course the run read, as the course status lists it."""
    return [{"moodle_course_id": course_id, "course_code": code, "course_name": name,
             "not_counted": reads.not_counted.get(course_id, "")}
            for course_id, (code, name) in sorted(reads.courses.items())]


def merge_learners(existing: dict[Pair, dict], reads: RunReads, run_id: str) -> tuple[Iterator[dict], list[Pair]]:
    """Rows to write (new or changed, made one at a time as the report store writes them: a first load makes
    120,000 at 20,000 employees) and pairs to delete, after merging this run's reads.

    A pair leaves when its course left Moodle, its user is no longer linked, or a course read
    in full no longer lists it (nor did the learner's own enrolment read).
    """
    pairs = sorted(set(existing) | set(reads.grades) | set(reads.completions) | set(reads.results))
    removed = [pair for pair in pairs if pair in existing and _gone(pair, reads)]
    return _upserts(pairs, existing, reads, run_id), removed


def _gone(pair: Pair, reads: RunReads) -> bool:
    course_id, user_id = pair
    return (course_id not in reads.courses or user_id not in reads.learners
            or (course_id in reads.fully_read_courses and pair not in reads.grades and pair not in reads.completions))


def _upserts(pairs: list[Pair], existing: dict[Pair, dict], reads: RunReads, run_id: str) -> Iterator[dict]:
    for pair in pairs:
        if _gone(pair, reads):
            continue
        course_id, user_id = pair
        before = existing.get(pair, {})
        row = {"completed": 0, "completed_on": None, "grade": None, "result": None, "passed": None,
               "result_on": None, **before}
        code, name = reads.courses[course_id]
        row.update(moodle_course_id=course_id, moodle_user_id=user_id, course_code=code, course_name=name,
                   employee_number=reads.learners[user_id],
                   learner_name=reads.names.get(user_id, before.get("learner_name", "")))
        if pair in reads.grades:
            row["grade"] = reads.grades[pair]
        if pair in reads.completions:
            completed, completed_on = reads.completions[pair]
            row["completed"] = int(completed)
            row["completed_on"] = (completed_on or _day(row["completed_on"])) if completed else None
        if pair in reads.results:
            row["result"], row["passed"], row["result_on"], grade = reads.results[pair]
            row["grade"] = grade if grade is not None else row["grade"]
            if row["completed"] and row["completed_on"] is None:
                row["completed_on"] = row["result_on"]
        values, stored = tuple(map(row.get, _COMPARED)), tuple(map(before.get, _COMPARED))
        if not before or (values != stored and not all(map(_same, values, stored))):  # equal: most, on a quiet night
            yield {**row, "run_id": run_id}


def _same(value, stored) -> bool:
    """Whether a value is the one stored, as both databases give values back."""
    return value == stored or _comparable(value) == _comparable(stored)


def _comparable(value):
    """A value as both databases give it back: dates may come as text, numbers as decimals."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int | float):
        return float(value)
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value[:10]
    return value


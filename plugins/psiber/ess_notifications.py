"""What ESS tells an employee (SPEC F8): one notification per key and employee, never twice.

The key says what the notification is about (a course first offered, an assessment, a due date,
a request), so a re-run, a retried task or a course hidden and shown again writes nothing new.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo

NEW_COURSE = "new_course"
COURSES_OFFERED = "courses_offered"
NEW_ASSESSMENT = "new_assessment"
ASSESSMENT_CHANGED = "assessment_changed"
ENROLMENT_OUTCOME = "enrolment_outcome"
MODULE_NAMES = {"assign": "assignment", "quiz": "quiz"}


@dataclass(frozen=True)
class Notification:
    employee_id: int
    key: str
    kind: str
    moodle_course_id: int
    course_code: str
    text: str
    assessment: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def new_course(employee_id: int, course_id: int, code: str, name: str) -> Notification:
    return Notification(employee_id, f"{NEW_COURSE}:{course_id}", NEW_COURSE, course_id, code,
                        f"New course for you: {name} ({code}). You can ask to enrol in ESS.")


def courses_offered(employee_id: int, count: int, offered_ever: str) -> Notification:
    """Many courses offered at once, told once: keyed by the set of courses ever offered to the employee after."""
    return Notification(employee_id, f"{COURSES_OFFERED}:{offered_ever}", COURSES_OFFERED, 0, "",
                        f"{count} new courses are offered to you: see them in ESS, where you can ask to enrol.")


def when(timestamp: int, zone: tzinfo) -> str:
    """A Moodle time as people read it, in the site's time zone: 'Friday 5 February 2027, 17:00'."""
    moment = datetime.fromtimestamp(int(timestamp), zone)
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M}"


def due_text(modname: str, due_at: int | None, zone: tzinfo) -> str:
    if not due_at:
        return "no due date"
    return f"{'closes' if modname == 'quiz' else 'due'} {when(due_at, zone)}"


def new_assessment(employee_id: int, course_id: int, code: str, course_name: str, modname: str, instance_id: int,
                   name: str, due_at: int | None, zone: tzinfo) -> Notification:
    kind = MODULE_NAMES.get(modname, modname)
    return Notification(employee_id, f"{NEW_ASSESSMENT}:{modname}:{instance_id}", NEW_ASSESSMENT, course_id, code,
                        f"New {kind} in {course_name}: '{name}', {due_text(modname, due_at, zone)}.", name)


def assessment_changed(employee_id: int, course_id: int, code: str, course_name: str, modname: str,
                       instance_id: int, name: str, due_at: int | None, zone: tzinfo) -> Notification:
    """Keyed by the new date: a date moved and moved back is told each time, the same move once."""
    kind = MODULE_NAMES.get(modname, modname)
    return Notification(employee_id, f"{ASSESSMENT_CHANGED}:{modname}:{instance_id}:{due_at or 0}",
                        ASSESSMENT_CHANGED, course_id, code,
                        f"Date changed: the {kind} '{name}' in {course_name}: now {due_text(modname, due_at, zone)}.",
                        name)


def enrolment_outcome(employee_id: int, course_id: int, code: str, course_name: str, requested_at: str,
                      enrolled: bool, reason: str) -> Notification:
    text = (f"You are enrolled in {course_name} ({code}): open it in Moodle." if enrolled else
            f"Your request to enrol in {course_name} ({code}) was refused: {reason}.")
    return Notification(employee_id, f"{ENROLMENT_OUTCOME}:{course_id}:{requested_at}", ENROLMENT_OUTCOME, course_id,
                        code, text)

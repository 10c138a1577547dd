"""New assessments (assignments and quizzes) and changed due dates, and whom to tell (SPEC F8).

Pure functions over Moodle's answers (``mod_assign_get_assignments``, ``mod_quiz_get_quizzes_by_courses``:
many courses per call) and what PSIber already saw. Moodle marks neither new nor edited activities
(a new one is only an id not seen before), so PSIber keeps every assessment it saw with its due date.
An assessment already past its due date is remembered but not announced (a first run, a course
shown again long after), and only employees enrolled as students in its course are told.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import tzinfo

from psiber.ess_notifications import Notification, assessment_changed, new_assessment


@dataclass(frozen=True)
class Assessment:
    modname: str
    instance_id: int
    moodle_course_id: int
    name: str
    due_at: int | None

    @property
    def key(self) -> tuple[str, int]:
        return self.modname, self.instance_id

    def to_dict(self) -> dict:
        return asdict(self)


def assessments_from_answers(assign_answers: list[dict], quiz_answers: list[dict]) -> list[Assessment]:
    """Assignments (due = ``duedate``) and visible quizzes (due = ``timeclose``); 0 means no date.

    Moodle leaves hidden assignments out (a warning) and hidden quizzes too, for a token user without
    ``moodle/course:viewhiddenactivities``; a quiz's ``visible`` is still checked for one that has it.
    """
    found = [Assessment("assign", int(a["id"]), int(a["course"]), str(a["name"]), int(a.get("duedate") or 0) or None)
             for answer in assign_answers for course in answer.get("courses", []) for a in course["assignments"]]
    found += [Assessment("quiz", int(q["id"]), int(q["course"]), str(q["name"]), int(q.get("timeclose") or 0) or None)
              for answer in quiz_answers for q in answer.get("quizzes", []) if q.get("visible", True)]
    return sorted(found, key=lambda a: (a.moodle_course_id, a.modname, a.instance_id))


@dataclass
class AssessmentChanges:
    """``new``/``changed``: to announce; ``to_store``: every assessment whose stored row must change."""

    new: list[Assessment] = field(default_factory=list)
    changed: list[Assessment] = field(default_factory=list)
    to_store: list[Assessment] = field(default_factory=list)

    @property
    def courses_to_announce(self) -> list[int]:
        return sorted({a.moodle_course_id for a in self.new + self.changed})


def plan_assessment_changes(current: list[Assessment], stored: list[dict], now: int) -> AssessmentChanges:
    """``stored``: PSIber's rows (modname, instance_id, moodle_course_id, name, due_at)."""
    rows = {(r["modname"], int(r["instance_id"])): r for r in stored}
    changes = AssessmentChanges()
    for assessment in current:
        row = rows.get(assessment.key)
        stored_due = None if row is None or row["due_at"] is None else int(row["due_at"])
        upcoming = assessment.due_at is None or assessment.due_at >= now
        if row is None:
            changes.to_store.append(assessment)
            if upcoming:
                changes.new.append(assessment)
        elif stored_due != assessment.due_at:
            changes.to_store.append(assessment)
            if upcoming:
                changes.changed.append(assessment)
        elif (row["name"], int(row["moodle_course_id"])) != (assessment.name, assessment.moodle_course_id):
            changes.to_store.append(assessment)
    return changes


def assessment_notifications(changes: AssessmentChanges, students: dict[int, list[int]],
                             courses: dict[int, tuple[str, str]], zone: tzinfo) -> list[Notification]:
    """One notification per announced assessment and student of its course. ``students``: employee ids
    by Moodle course id; ``courses``: (code, name) by Moodle course id."""
    notifications = []
    for make, assessments in ((new_assessment, changes.new), (assessment_changed, changes.changed)):
        for a in assessments:
            code, name = courses.get(a.moodle_course_id, (str(a.moodle_course_id), str(a.moodle_course_id)))
            notifications += [make(employee_id, a.moodle_course_id, code, name, a.modname, a.instance_id, a.name,
                                   a.due_at, zone) for employee_id in sorted(set(students.get(a.moodle_course_id, [])))]
    return notifications

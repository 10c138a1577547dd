"""MIS class memberships → Moodle manual enrolments in the provisioned courses (pure).

Students are enrolled as student, teachers as editing teacher (role ids from the settings). The MIS decides
the enrolments of the people it provisions in the courses it provisions; enrolments of other accounts (made
by hand) are left alone. A membership that ended is unenrolled only when ``deletion.enrolments`` allows it, and
so is every enrolment of the MIS's accounts in a kept course whose class left the MIS or is no longer
provisioned (its memberships ended with it; without that permission the sync leaves such a course alone);
otherwise the enrolment is left as it is, not suspended: the guide's "make sure nothing is deleted" means the
course keeps its participants, and Moodle's enrol call re-activates a suspended enrolment anyway, so a
suspension would not survive the next membership. An existing enrolment is never sent again (that would
re-activate a teacher's suspension of it and clear its dates); a missing role is added by enrolling with it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard

from school.guard import GUARD_SETTING
from school.validation import membership_record
from sync_common.mass_change import guard_verdict
from sync_common.outcomes import Outcome
from sync_common.validation import normalised_key

FLOW = "enrolments"


def new_id(external_id: str) -> str:
    """Stands for the id of an account or course this run creates (a preview cannot know it)."""
    return f"new:{external_id}"


def _exists(moodle_id: int | str) -> TypeGuard[int]:
    return isinstance(moodle_id, int)


@dataclass
class EnrolmentPlan:
    """``enrols``: {userid, courseid, roleid, record}; ``unenrols``: {userid, courseid, record};
    ``unassigns``: {userid, courseid, roleid, record} (a role the membership no longer has)."""

    enrols: list[dict] = field(default_factory=list)
    unenrols: list[dict] = field(default_factory=list)
    unassigns: list[dict] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    managed: int = 0


def plan_enrolments(memberships: Iterable[dict], courses: Mapping[str, int | str], users: Mapping[str, int | str],
                    enrolled: Mapping[int, Mapping[int, Iterable[int]]], role_ids: Mapping[str, int], *,
                    delete_enrolments: bool, no_account: Mapping[str, str],
                    released: Mapping[str, tuple[int, str]] | None = None,
                    listed: Collection[str] = frozenset()) -> EnrolmentPlan:
    """Enrol, add a role, unenrol, take a role back, or leave, one outcome per membership and per ended one.

    ``memberships``: valid memberships of active people; ``courses``: provisioned class → Moodle course id (or
    ``new_id``); ``users``: External ID → Moodle user id (or ``new_id``) of every person the sync provisions,
    leavers included; ``enrolled``: course id → user id → role ids, read from Moodle; ``no_account``: why a person has
    no Moodle account (invalid, a conflict); ``released``: kept course's class → (course id, why the sync no longer
    provisions it); ``listed``: a targeted run's External IDs (normalised), the only people whose enrolments it
    may take back; empty in a whole run.
    """
    managed_roles = set(role_ids.values())
    person_of = {user_id: external_id for external_id, user_id in users.items() if _exists(user_id)}
    plan = EnrolmentPlan()
    wanted: dict[str, dict[int | str, int]] = {}
    for membership in memberships:
        person, klass = str(membership["person_external_id"]), str(membership["class_external_id"])
        if klass not in courses:
            continue  # the class is not provisioned: its outcome says why
        record = membership_record(person, klass)
        user_id = users.get(person)
        if user_id is None:
            why = no_account.get(person, "the person is not an active teacher or student of the MIS")
            plan.outcomes.append(Outcome(record, "skipped", f"no Moodle account: {why}", flow=FLOW))
            continue
        wanted.setdefault(klass, {})[user_id] = role_ids[membership["role"]]
        course_id = courses[klass]
        in_course = enrolled.get(course_id, {}) if _exists(course_id) else {}  # none in a course this run creates
        held = set(in_course.get(user_id, ())) if _exists(user_id) else set()
        role = role_ids[membership["role"]]
        if user_id in in_course:
            if role in held:
                plan.outcomes.append(Outcome(record, "unchanged", flow=FLOW))
            else:
                plan.enrols.append({"userid": user_id, "courseid": course_id, "roleid": role, "record": record,
                                    "action": "role_added"})
        else:
            plan.enrols.append({"userid": user_id, "courseid": course_id, "roleid": role, "record": record,
                                "action": "enrolled"})
        for extra in sorted((held & managed_roles) - {role}):
            _take_back(plan, {"userid": user_id, "courseid": course_id, "roleid": extra, "record": record},
                       delete_enrolments, "the membership's role changed in the MIS")

    for klass, course_id in sorted(courses.items()):
        for user_id in sorted(enrolled.get(course_id, {}) if _exists(course_id) else ()):
            if user_id not in person_of:
                continue  # an account the MIS does not provision: not ours to change
            if listed and normalised_key(person_of[user_id]) not in listed:
                continue  # a targeted run's: another person, left as it is
            plan.managed += 1
            if user_id not in wanted.get(klass, {}):
                record = membership_record(person_of[user_id], klass)
                _take_back(plan, {"userid": user_id, "courseid": course_id, "record": record}, delete_enrolments,
                           "the membership ended in the MIS")
    if delete_enrolments:  # otherwise a released course's enrolments are left as they are, without outcomes
        _take_back_released(plan, released or {}, enrolled, person_of)
    return plan


def _take_back_released(plan: EnrolmentPlan, released: Mapping[str, tuple[int, str]],
                        enrolled: Mapping[int, Mapping[int, Iterable[int]]], person_of: Mapping[int, str]) -> None:
    """Every enrolment of the MIS's accounts in a kept course whose class is released: its memberships ended."""
    for klass, (course_id, why) in sorted(released.items()):
        for user_id in sorted(set(enrolled.get(course_id, {})) & set(person_of)):
            plan.managed += 1
            plan.unenrols.append({"userid": user_id, "courseid": course_id, "record": membership_record(
                person_of[user_id], klass), "reason": f"{why}; Moodle course #{course_id} is kept"})


def _take_back(plan: EnrolmentPlan, entry: dict, delete_enrolments: bool, why: str) -> None:
    if delete_enrolments:
        (plan.unassigns if "roleid" in entry else plan.unenrols).append({**entry, "reason": why})
    else:
        what = "role left" if "roleid" in entry else "left enrolled"
        plan.outcomes.append(Outcome(entry["record"], "kept", f"{why}; {what}, because deletion of enrolments is "
                                                              "not allowed", flow=FLOW))


def check_enrolment_guard(plan: EnrolmentPlan, max_share: float, min_records: int) -> str | None:
    return guard_verdict(len(plan.unenrols), plan.managed, "unenrol {changes} of {base} enrolments the MIS manages",
                         max_share, min_records, GUARD_SETTING)

"""MIS classes → Moodle courses: which classes are provisioned, and what to create, rename or delete (pure).

A course is linked to its class by the course ID number (= the class's External ID, compared trimmed and in any
letter case as validation keeps MIS IDs apart: a course whose ID number differs only so is a conflict naming it,
never a second course, and a class is never taken for gone while a variant of its ID is in the MIS). It is
created with its group type's format, visibility and category; afterwards only its names follow the MIS: a
course an administrator moved to another category, hid or reformatted stays as they left it. A linked course
whose class left the MIS or is no longer provisioned is left, deleted when empty, or deleted, as
``deletion.courses`` says. Its class's memberships ended with it: when ``deletion.enrolments`` allows taking
back the enrolments of the MIS's accounts, a course only they are enrolled in counts as empty, and deleting it
removes them (no unenrolment is sent, nor reported, for a course deleted in the same run).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from school.config import CONFIG_OWNER, CourseDeletion, SchoolIntegration
from school.guard import GUARD_SETTING
from school.provisioning import is_provisioned, parse_override, provisioning_reason
from sync_common.mass_change import guard_verdict
from sync_common.moodle_rules import SITE_FORMAT
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.validation import normalised_key

FLOW = "classes"
PLAN_ONLY_KEYS = ("class_external_id", "action", "changed", "reason")


@dataclass
class CoursePlan:
    """``creates``: create_courses entries (+ class_external_id); ``updates``: update_courses entries with the
    changed names; ``deletes``: {id, class_external_id, reason}; ``links``: (class External ID, course id) of
    the courses that exist and stay; ``unlinks``: classes whose linked course is gone from Moodle;
    ``released``: class → {id, reason} of the kept courses whose class left the MIS or is no longer provisioned."""

    creates: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    deletes: list[dict] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    unlinks: list[str] = field(default_factory=list)
    released: dict[str, dict] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    linked: int = 0


def course_names(klass: dict) -> tuple[str, str]:
    """(full name, short name) of a class's course: the year tells this year's class from last year's."""
    year = int(klass["academic_year"])
    return f"{klass['name']} {year}", f"{klass['code']} {year}"


def provisioned_classes(classes: Iterable[dict], integration: SchoolIntegration) -> dict[str, str | None]:
    """Every class → None when it is provisioned, else why not."""
    verdicts: dict[str, str | None] = {}
    for klass in classes:
        group_type = integration.group_types.get(klass["group_type"])
        if group_type is None:
            verdicts[klass["external_id"]] = (f"group type '{klass['group_type']}' has no settings in the "
                                              "integration file")
            continue
        override, sms = parse_override(klass["provisioning_override"]), bool(int(klass["sms_controlled"]))
        reason = provisioning_reason(klass["group_type"], group_type.provisioning, sms, override)
        verdicts[klass["external_id"]] = None if is_provisioned(group_type.provisioning, sms, override) else reason
    return verdicts


def released_courses(classes: Iterable[dict], mis_ids: Iterable[str], links: Mapping[str, int],
                     integration: SchoolIntegration) -> dict[str, str]:
    """Linked classes whose course the sync no longer provisions → why (left the MIS, or not provisioned)."""
    verdicts = provisioned_classes(classes, integration)
    in_mis = {normalised_key(external_id) for external_id in mis_ids}
    released = {}
    for external_id in links:
        if normalised_key(external_id) not in in_mis:
            released[external_id] = "the class is no longer in the MIS"
        elif verdicts.get(external_id):
            released[external_id] = f"the class is no longer provisioned ({verdicts[external_id]})"
    return released


def plan_course_changes(classes: Iterable[dict], mis_ids: Iterable[str], moodle_courses: Iterable[dict],
                        categories: Iterable[dict], links: Mapping[str, int], integration: SchoolIntegration,
                        enrolled: Mapping[int, list[int]], mis_accounts: Collection[int] = (),
                        targeted: bool = False) -> CoursePlan:
    """One outcome per class, and per linked course whose class is gone.

    ``classes``: the valid MIS classes; ``mis_ids``: every MIS class's External ID (an invalid class keeps its
    course); ``enrolled``: the Moodle user ids enrolled in each released course, read only for delete_only_empty
    (one of them is enough unless ``deletion.enrolments`` is allowed); ``mis_accounts``: the Moodle user ids of the
    accounts the MIS provisions; ``targeted``: the classes are a targeted run's (its listed people's), so no
    other linked class is taken for gone.
    """
    classes = list(classes)
    courses = {int(c["id"]): c for c in moodle_courses if c.get("format") != SITE_FORMAT}
    by_idnumber = {normalised_key(c["idnumber"]): c for c in courses.values() if normalised_key(c.get("idnumber"))}
    by_shortname = {str(c["shortname"]): c for c in courses.values()}
    category_ids = {str(c["idnumber"]): int(c["id"]) for c in categories if c.get("idnumber")}
    verdicts = provisioned_classes(classes, integration)
    released = {} if targeted else released_courses(classes, mis_ids, links, integration)
    plan = CoursePlan(linked=sum(int(course_id) in courses for course_id in links.values()))

    for klass in classes:
        external_id = str(klass["external_id"])
        linked = courses.get(links.get(external_id, -1))
        if external_id in links and linked is None:
            plan.unlinks.append(external_id)
        verdict = verdicts[external_id]
        if verdict is not None:
            if external_id not in released:
                owner = CONFIG_OWNER if "no settings" in verdict else ""
                plan.outcomes.append(Outcome(external_id, "skipped", f"not provisioned: {verdict}", owner, FLOW))
            continue
        course = linked or by_idnumber.get(normalised_key(external_id))
        if linked is None and course is not None and course["idnumber"] != external_id:
            plan.outcomes.append(Outcome(
                external_id, "conflict", f"Moodle course #{course['id']} has ID number '{course['idnumber']}', which "
                f"differs from this class's External ID '{external_id}' only in letter case or spaces: correct the "
                "one that is wrong (the ID number in Moodle or the External ID in the MIS); no second course was made",
                f"{OWNER_MOODLE_ADMIN} / school MIS administrator", FLOW))
            continue
        fullname, shortname = course_names(klass)
        if course is None:
            _plan_create(plan, klass, fullname, shortname, by_shortname, category_ids, integration)
            continue
        plan.links.append((external_id, int(course["id"])))
        changes = {"fullname": fullname, "shortname": shortname}
        changes = {name: value for name, value in changes.items() if course.get(name) != value}
        holder = by_shortname.get(changes["shortname"]) if "shortname" in changes else None
        note = ""
        if holder is not None and holder["id"] != course["id"]:
            note = (f"the new short name '{shortname}' is already used by Moodle course #{holder['id']}; short name "
                    "left unchanged")
            del changes["shortname"]
        if changes:
            plan.updates.append({"class_external_id": external_id, "id": int(course["id"]), "action": "updated",
                                 "changed": sorted(changes), **({"reason": note} if note else {}), **changes})
        elif note:
            plan.outcomes.append(Outcome(external_id, "conflict", note, f"{OWNER_MOODLE_ADMIN} / school MIS "
                                                                        "administrator", FLOW))
        else:
            plan.outcomes.append(Outcome(external_id, "unchanged", flow=FLOW))

    for external_id, why in sorted(released.items()):
        course = courses.get(links[external_id])
        if course is None:
            if external_id not in plan.unlinks:
                plan.unlinks.append(external_id)
            continue
        ending = set(mis_accounts) if integration.deletion.enrolments else set()
        _plan_released(plan, external_id, course, why, integration.deletion.courses, enrolled, ending)
    return plan


def _plan_create(plan: CoursePlan, klass: dict, fullname: str, shortname: str, by_shortname: Mapping[str, dict],
                 category_ids: Mapping[str, int], integration: SchoolIntegration) -> None:
    external_id = str(klass["external_id"])
    group_type = integration.group_types[klass["group_type"]]
    category = category_ids.get(group_type.category)
    if category is None:
        plan.outcomes.append(Outcome(
            external_id, "failed", f"Moodle has no course category with ID number '{group_type.category}' (group "
            f"type '{klass['group_type']}'): create it, or correct the category in the integration file",
            f"{OWNER_MOODLE_ADMIN} / {CONFIG_OWNER}", FLOW))
        return
    holder = by_shortname.get(shortname)
    if holder is not None:
        plan.outcomes.append(Outcome(
            external_id, "conflict", f"the short name '{shortname}' is already used by Moodle course #{holder['id']} "
            f"(ID number '{holder.get('idnumber') or ''}'): if that course is this class's, set its ID number to "
            f"'{external_id}' in Moodle, otherwise rename the class code in the MIS; no second course was made",
            f"{OWNER_MOODLE_ADMIN} / school MIS administrator", FLOW))
        return
    start, end = integration.course_dates(int(klass["academic_year"]))
    entry = {"class_external_id": external_id, "fullname": fullname, "shortname": shortname, "categoryid": category,
             "idnumber": external_id, "format": group_type.format, "visible": int(group_type.visible),
             "startdate": start, "enddate": end}
    if group_type.format == "weeks":  # its automatic end date would replace the academic year's end
        entry["courseformatoptions"] = [{"name": "automaticenddate", "value": 0}]
    plan.creates.append(entry)


def _plan_released(plan: CoursePlan, external_id: str, course: dict, why: str, deletion: CourseDeletion,
                   enrolled: Mapping[int, list[int]], ending: set[int]) -> None:
    """``ending``: accounts whose enrolments in the course the sync takes back (empty when it may not)."""
    course_id = int(course["id"])
    users = enrolled.get(course_id)
    others = None if users is None else [user_id for user_id in users if user_id not in ending]
    if deletion is CourseDeletion.delete or (deletion is CourseDeletion.delete_only_empty and others == []):
        removed = (f"; only accounts the MIS provisions, whose memberships ended, were enrolled ({len(users)}): "
                   "their enrolments go with the course") if users and deletion is CourseDeletion.delete_only_empty \
            else ""
        plan.deletes.append({"class_external_id": external_id, "id": course_id,
                             "reason": f"{why}; deletion of courses: {deletion.value}{removed}"})
        return
    plan.links.append((external_id, course_id))
    plan.released[external_id] = {"id": course_id, "reason": why}
    if deletion is CourseDeletion.dont_delete:
        kept = "courses are not deleted (deletion.courses: dont_delete)"
    elif ending:
        assert others is not None, "delete_only_empty reads the enrolments of every released course"
        kept = (f"{len(others)} accounts the MIS does not provision (enrolled by hand) are still enrolled, and only "
                "empty courses are deleted")
    else:
        kept = "users are still enrolled, and only empty courses are deleted"
    if ending:
        kept += "; the enrolments of the MIS's accounts in it are taken back (deletion.enrolments)"
    plan.outcomes.append(Outcome(external_id, "kept", f"Moodle course #{course_id} left as it is: {why}; {kept}",
                                 flow=FLOW))


def check_course_guard(plan: CoursePlan, max_share: float, min_records: int) -> str | None:
    return guard_verdict(len(plan.deletes), plan.linked, "delete {changes} of {base} linked Moodle courses",
                         max_share, min_records, GUARD_SETTING)

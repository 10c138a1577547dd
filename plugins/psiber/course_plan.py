"""Moodle courses → PSIber courses (F3), as pure functions over plain records.

Courses flow one way: made in Moodle, copied into PSIber. A course that leaves Moodle turns
Inactive in PSIber and is never deleted; a course made by hand in PSIber is never touched.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from psiber.config import COURSE_ELEMENT_KINDS, Integration
from sync_common.moodle_rules import SITE_FORMAT
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome

OWNER_TRAINING_ADMIN = "PSIber training administrator"
NO_COMPLETION_CRITERIA = "Course completion criteria not defined"
COMPARED = ("description", "category", "status", "start_date", *COURSE_ELEMENT_KINDS)
_TAGS = re.compile(r"<[^>]+>")
TEXT_LIMIT = 255  # PSIber's course text columns
NUMBER_FIELD = "number"  # Moodle 4.5's customfield_number


def real_courses(moodle_courses: list[dict]) -> list[dict]:
    """Moodle's courses without the site course (the front page), by Moodle id.

    Moodle answers in the database's physical order (the site course first one day, last the
    next): sorting makes a run's plan and report the same whatever order Moodle chose.
    """
    return sorted((course for course in moodle_courses if course.get("format") != SITE_FORMAT),
                  key=lambda course: int(course["id"]))


def course_code(course: dict) -> str:
    """Moodle's course ID number, else its short name (the seed's course identifier)."""
    return (course.get("idnumber") or "").strip() or course["shortname"].strip()


def _plain(text) -> str:
    """Moodle formats names for HTML (tags, '&amp;'); PSIber stores the plain text."""
    return html.unescape(_TAGS.sub("", str(text or ""))).strip()


def _date(timestamp, zone: tzinfo) -> str | None:
    """Moodle stores midnight in the site's time zone: the day is read there, not in UTC."""
    return datetime.fromtimestamp(int(timestamp), zone).date().isoformat() if timestamp else None


def _number_text(raw: dict) -> str:
    """The text of a field matched to a number element ('' when empty).

    A Moodle number field (``customfield_number``) is read from ``valueraw``, a JSON number or
    null: its ``value`` is formatted for display (a decimal comma in some languages, the field's
    display template such as "{value} %", null or the "display when zero" text for 0). A text
    field holds the number as typed.
    """
    if raw.get("type") == NUMBER_FIELD:
        return "" if raw.get("valueraw") is None else str(raw["valueraw"]).strip()
    return _plain(raw.get("value"))


def _element_value(kind: str, raw: dict, picklist: set[str]) -> tuple[object, str | None]:
    """(value for PSIber, problem) of one custom field; a problem leaves the element empty."""
    if kind == "flag":
        return int(str(raw.get("valueraw") or "0").strip() not in ("", "0")), None
    shown = _number_text(raw) if kind == "number" else _plain(raw.get("value"))
    if not shown:
        return None, None
    if kind == "number":
        try:
            rate = float(shown.rstrip("%").strip())
        except ValueError:
            return None, f"'{shown}' is not a number"
        return (rate, None) if 0 <= rate <= 100 else (None, f"{shown} is not a percentage from 0 to 100")
    if len(shown) > TEXT_LIMIT:
        return None, f"the value is longer than PSIber's {TEXT_LIMIT} characters"
    if kind == "picklist" and shown not in picklist:
        return None, f"'{shown}' is not a value of the PSIber picklist (values: {', '.join(sorted(picklist))})"
    return shown, None


@dataclass
class CoursePlan:
    upserts: list[dict] = field(default_factory=list)
    new_categories: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def _outcome(code: str, action: str, reason: str = "", owner: str = "") -> Outcome:
    return Outcome(code, action, reason, owner, flow="courses")


def psiber_courses_from_moodle(
    moodle_courses: list[dict], categories: list[dict], integration: Integration, picklists: dict[str, set[str]],
) -> tuple[list[dict], list[Outcome]]:
    """The PSIber course each (validated) Moodle course should be, plus record-level warnings."""
    category_names = {int(category["id"]): _plain(category["name"]) for category in categories}
    rows: list[dict] = []
    outcomes: list[Outcome] = []
    for course in real_courses(moodle_courses):
        code = course_code(course)
        row: dict[str, object] = {
            "course_code": code,
            "description": _plain(course["fullname"]),
            "category": category_names.get(int(course.get("categoryid") or 0)),
            "status": "Active" if course.get("visible") else "Inactive",
            "start_date": _date(course.get("startdate"), integration.zone),
            "moodle_course_id": int(course["id"]),
            "enddate": int(course.get("enddate") or 0),
            **{element: None for element in COURSE_ELEMENT_KINDS},
        }
        fields = {item["shortname"]: item for item in course.get("customfields") or []}
        for match in integration.courses.custom_field_matches:
            kind = COURSE_ELEMENT_KINDS[match.psiber_element]
            raw = fields.get(match.moodle_field)
            if raw is None:
                continue
            value, problem = _element_value(kind, raw, picklists.get(match.psiber_element, set()))
            row[match.psiber_element] = value
            if problem:
                outcomes.append(_outcome(code, "warning", f"custom field '{match.moodle_field}' → "
                                         f"{match.psiber_element}: {problem}; left empty", OWNER_TRAINING_ADMIN))
        if not course.get("enablecompletion"):
            outcomes.append(_outcome(code, "warning", f"{NO_COMPLETION_CRITERIA}: no results can be read for this "
                                     "course until completion tracking and criteria are set", OWNER_MOODLE_ADMIN))
        rows.append(row)
    return rows, outcomes


def _comparable(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    if isinstance(value, float) or (value is not None and type(value).__name__ == "Decimal"):
        return round(float(value), 2)
    return value


def plan_course_changes(
    wanted: list[dict], existing: list[dict], integration: Integration, known_categories: set[str],
    moodle_course_ids: set[int],
) -> CoursePlan:
    """Create, update changed fields, or deactivate PSIber courses; hand-made ones are left alone.

    ``moodle_course_ids`` are all courses Moodle has (also those not copied because of a
    conflict): only a course missing from Moodle is deactivated. A Moodle course that takes
    over the code of one that left Moodle (re-created, restored from a backup) takes over its
    PSIber course too, so the results that follow land on it.
    """
    plan = CoursePlan()
    relinked: set[int] = set()
    by_code = {row["course_code"]: row for row in existing}
    ours = {int(row["moodle_course_id"]): row for row in existing
            if row["source"] == "moodle" and row["integration_name"] == integration.key}
    for row in wanted:
        current = ours.get(row["moodle_course_id"]) or by_code.get(row["course_code"])
        code = row["course_code"]
        if current is not None and (current["source"] != "moodle" or current["integration_name"] != integration.key):
            who = "made by hand in PSIber" if current["source"] != "moodle" else \
                f"synced from another integration ({current['integration_name']})"
            plan.outcomes.append(_outcome(code, "conflict", f"a PSIber course with this code was {who}; the Moodle "
                                          "course was not copied over it", OWNER_TRAINING_ADMIN))
            continue
        previous_id = int(current["moodle_course_id"]) if current is not None else row["moodle_course_id"]
        if previous_id != row["moodle_course_id"]:
            if previous_id in moodle_course_ids:
                plan.outcomes.append(_outcome(code, "conflict", f"PSIber's course with this code belongs to Moodle "
                                              f"course #{previous_id}; give Moodle course #{row['moodle_course_id']} "
                                              "its own ID number", OWNER_MOODLE_ADMIN))
                continue
            relinked.add(previous_id)
        elif current is not None and current["course_code"] != code:
            plan.outcomes.append(_outcome(current["course_code"], "warning", f"Moodle now calls this course '{code}'; "
                                          "PSIber keeps its code so its history stays attached"))
            row = {**row, "course_code": current["course_code"]}
        if row["category"] and row["category"] not in known_categories and row["category"] not in plan.new_categories:
            plan.new_categories.append(row["category"])
        if current is None:
            plan.upserts.append(row)
            plan.outcomes.append(_outcome(row["course_code"], "created"))
            continue
        changed = [name for name in (*COMPARED, "moodle_course_id")
                   if _comparable(current.get(name)) != _comparable(row[name])]
        if changed:
            plan.upserts.append(row)
            plan.outcomes.append(_outcome(row["course_code"], "updated", f"changed: {', '.join(changed)}"))
        else:
            plan.outcomes.append(_outcome(row["course_code"], "unchanged"))
    for moodle_id, current in ours.items():
        if moodle_id not in moodle_course_ids and moodle_id not in relinked and current["status"] != "Inactive":
            plan.upserts.append({**current, "status": "Inactive"})
            plan.outcomes.append(_outcome(current["course_code"], "deactivated", "no longer in Moodle"))
    return plan

"""F5: which custom fields Moodle has for users and courses, and which this integration matches.

Moodle's web services list user profile fields (with menu options) only through the signup
settings of e-mail self-registration, and course custom fields only through the courses that
carry them; both are read here, and a missing source is reported rather than fatal.
"""

from __future__ import annotations

import logging

from moodle_provider.exceptions import MoodleError
from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import CONFIG_OWNER, COURSE_ELEMENT_KINDS, MATCHABLE_EMPLOYEE_ELEMENTS, Integration
from psiber.course_sync import MOODLE_COURSES
from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, read_json
from sync_common.step_outputs import step_file, write_outcomes

log = logging.getLogger(__name__)

# What field matching leaves behind: its warnings and the matches found.
MATCHES = step_file("fields.discover")

USER_FIELDS_FUNCTION = "auth_email_get_signup_settings"
_MENU_TYPES = {"menu", "select"}


def read_user_fields(hook: MoodleHook) -> tuple[list[dict], str | None]:
    """(user profile fields, why they could not be read)."""
    try:
        settings = hook.call(USER_FIELDS_FUNCTION)
    except MoodleError as error:
        if error.transient:
            raise
        return [], (f"user profile fields cannot be listed ({error.moodle_message}): add {USER_FIELDS_FUNCTION} "
                    "to the token's service and allow e-mail self-registration, or list the fields by hand")
    return [
        {"shortname": field["shortname"], "name": field["name"], "type": field["datatype"],
         "options": [line for line in (field.get("param1") or "").splitlines() if line.strip()]
         if field["datatype"] in _MENU_TYPES else None}
        for field in settings.get("profilefields", [])
    ], None


def read_course_fields(courses: list[dict]) -> list[dict]:
    """Course custom fields seen on the site's courses; a drop-down's options are the values seen."""
    fields: dict[str, dict] = {}
    for course in courses:
        for item in course.get("customfields") or []:
            field = fields.setdefault(item["shortname"], {"shortname": item["shortname"], "name": item["name"],
                                                          "type": item["type"], "options": None})
            if item["type"] in _MENU_TYPES and item.get("value"):
                field["options"] = sorted(set(field["options"] or []) | {str(item["value"])})
    return sorted(fields.values(), key=lambda field: field["shortname"])


def field_matches(user_fields: list[dict], course_fields: list[dict], integration: Integration) -> dict:
    """Every Moodle field with the PSIber element it is matched to (None when unmatched)."""
    user_matches = {m.moodle_field: m.psiber_element for m in integration.users.profile_field_matches}
    course_matches = {m.moodle_field: m.psiber_element for m in integration.courses.custom_field_matches}
    return {
        "user_fields": [{**field, "psiber_element": user_matches.get(field["shortname"])} for field in user_fields],
        "course_fields": [{**field, "psiber_element": course_matches.get(field["shortname"])}
                          for field in course_fields],
    }


def unmatched_field_warnings(matches: dict) -> list[Outcome]:
    return [
        Outcome(f"{kind.split('_')[0]} field {field['shortname']}", "warning",
                f"Moodle {kind.replace('_', ' ')[:-1]} '{field['name']}' ({field['type']}) is not matched to a "
                "PSIber element", CONFIG_OWNER, flow="fields")  # who matches it in the integration file
        for kind in ("user_fields", "course_fields") for field in matches[kind] if field["psiber_element"] is None
    ]


def _yaml_list(values) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def render_field_report(matches: dict, note: str | None = None) -> str:
    """A table of the fields and a ready-to-paste config block for the unmatched ones."""
    lines = []
    titles = (("user_fields", "Moodle user profile fields"), ("course_fields", "Moodle course custom fields"))
    for kind, title in titles:
        lines.append(f"{title}:")
        for field in matches[kind]:
            options = f" options: {', '.join(field['options'])}" if field["options"] else ""
            lines.append(f"  {field['shortname']:<20} {field['type']:<9} → "
                         f"{field['psiber_element'] or 'NOT MATCHED'}{options}")
        if not matches[kind]:
            lines.append("  (none found)")
    if note:
        lines.append(f"Note: {note}")
    unmatched_users = [f for f in matches["user_fields"] if f["psiber_element"] is None]
    unmatched_courses = [f for f in matches["course_fields"] if f["psiber_element"] is None]
    if unmatched_users or unmatched_courses:
        lines += ["", "# Paste into the integration file, then set each psiber_element (or delete the line).",
                  "# User elements: " + ", ".join(MATCHABLE_EMPLOYEE_ELEMENTS),
                  "# Course elements: " + ", ".join(COURSE_ELEMENT_KINDS)]
    if unmatched_users:
        lines += ["users:", "  profile_field_matches:"]
        for field in unmatched_users:
            options = f", menu_options: {_yaml_list(field['options'])}" if field["options"] else ""
            lines.append(f"    - {{moodle_field: {field['shortname']}, psiber_element: CHOOSE{options}}}")
    if unmatched_courses:
        lines += ["courses:", "  custom_field_matches:"]
        lines += [f"    - {{moodle_field: {field['shortname']}, psiber_element: CHOOSE}}"
                  for field in unmatched_courses]
    return "\n".join(lines)


def discover_custom_fields(integration: Integration, hook: MoodleHook, run_dir: RunPath) -> dict:
    """DAG step: record the field matches of this run and warn about unmatched fields."""
    user_fields, note = read_user_fields(hook)
    courses_file = run_dir / MOODLE_COURSES  # only the courses flow reads courses (and may)
    courses = read_json(courses_file) if courses_file.exists() else []
    matches = field_matches(user_fields, read_course_fields(courses), integration)
    warnings = unmatched_field_warnings(matches)
    write_outcomes(run_dir / MATCHES, warnings, note=note, **matches)
    log.info("Custom fields:\n%s", render_field_report(matches, note))
    return {"user_fields": len(matches["user_fields"]), "course_fields": len(matches["course_fields"]),
            "unmatched": len(warnings)}

"""Which Moodle courses ESS offers to which employees, and what that changes in PSIber (SPEC F8).

Pure functions over plain records: the integration's offer rules, Moodle's courses and categories
as the courses flow read them (no Moodle call of its own), the employees of the users flow's
extract, and the offers PSIber already holds. A course is announced the first time it is offered
to an employee, never again: an offer that ends keeps its row, so a course hidden and shown again
(or a rule changed back) is offered again silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from psiber.config import CONFIG_OWNER, EssOffer, Integration
from psiber.course_plan import _plain, course_code, real_courses
from psiber.ess_notifications import Notification, new_course
from sync_common.outcomes import Outcome

FLOW = "ess"
CHECKBOX = "checkbox"
OFFER_CHANGES = {
    "offered": "offered in ESS, the employee notified",
    "offered_again": "offered again (announced before, so not again)",
    "withdrawn": "no longer offered (course hidden or gone, outside the offer rules, or the employee no longer active)",
}


@dataclass(frozen=True)
class Offer:
    moodle_course_id: int
    course_code: str
    course_name: str


def _folded(values: Iterable[str]) -> set[str]:
    return {value.strip().casefold() for value in values}


def _rule_categories(rule: EssOffer, categories: list[dict]) -> tuple[set[int], list[str]]:
    """Ids of the categories a rule names (by name or ID number) and of their subcategories; names not found."""
    wanted = _folded(rule.categories)
    named = {int(c["id"]) for c in categories
             if _plain(c.get("name")).casefold() in wanted or (c.get("idnumber") or "").strip().casefold() in wanted}
    found = _folded(_plain(c.get("name")) for c in categories) | _folded(c.get("idnumber") or "" for c in categories)
    paths = {int(c["id"]): str(c.get("path") or f"/{c['id']}") for c in categories}
    ids = {cid for cid, path in paths.items() if any(f"/{parent}/" in f"{path}/" for parent in named)}
    return ids, [name for name in rule.categories if name.strip().casefold() not in found]


def _ticked(course: dict, shortname: str) -> bool:
    return any(f.get("shortname") == shortname and f.get("type") == CHECKBOX and int(f.get("valueraw") or 0) == 1
               for f in course.get("customfields") or [])


def rule_courses(rule: EssOffer, courses: list[dict], categories: list[dict]) -> tuple[list[dict], list[str]]:
    """The visible courses a rule offers, and what in the rule does not match the site (for a warning)."""
    category_ids, unknown = _rule_categories(rule, categories)
    problems = [f"category '{name}' is not a Moodle course category" for name in unknown]
    if rule.custom_field:
        kinds = {f.get("type") for c in courses for f in c.get("customfields") or []
                 if f.get("shortname") == rule.custom_field}
        if not kinds:
            problems.append(f"Moodle has no course custom field '{rule.custom_field}'")
        elif kinds != {CHECKBOX}:
            problems.append(f"course custom field '{rule.custom_field}' is not a checkbox")
    chosen = [c for c in real_courses(courses) if int(c.get("visible") or 0) == 1
              and (not rule.categories or int(c.get("categoryid") or 0) in category_ids)
              and (not rule.custom_field or _ticked(c, rule.custom_field))]
    return chosen, problems


def in_scope(employee: dict, active_statuses: Iterable[str]) -> bool:
    """Active employees on a payroll PSIber knows (an unknown payroll is an invalid record of the users flow)."""
    return bool(employee.get("known_payroll_code")) and \
        str(employee.get("employment_status") or "").strip().casefold() in _folded(active_statuses)


def rule_employees(rule: EssOffer, employees: list[dict]) -> list[dict]:
    payrolls = None if rule.payrolls is None else _folded(rule.payrolls)
    types = None if rule.employment_types is None else _folded(rule.employment_types)
    return [e for e in employees
            if (payrolls is None or str(e.get("payroll_code") or "").strip().casefold() in payrolls)
            and (types is None or str(e.get("employment_type") or "").strip().casefold() in types)]


def offers_by_employee(integration: Integration, employees: list[dict], courses: list[dict],
                       categories: list[dict]) -> tuple[dict[int, dict[int, Offer]], list[Outcome]]:
    """Every active employee's offered courses (by Moodle course id), and a warning per rule part that
    matches nothing on the site (a misspelt category or field offers nothing, silently otherwise)."""
    eligible = [e for e in employees if in_scope(e, integration.users.active_statuses)]
    offers: dict[int, dict[int, Offer]] = {int(e["employee_id"]): {} for e in eligible}
    warnings = []
    for number, rule in enumerate(integration.ess.offers, start=1):
        chosen, problems = rule_courses(rule, courses, categories)
        warnings += [Outcome(f"ESS offer rule {number}", "warning", f"{problem}: this rule offers nothing through it",
                             CONFIG_OWNER, flow=FLOW) for problem in problems]
        for employee in rule_employees(rule, eligible):
            for course in chosen:
                offers[int(employee["employee_id"])][int(course["id"])] = Offer(
                    int(course["id"]), course_code(course), _plain(course.get("fullname")))
    return offers, warnings


@dataclass
class OfferPlan:
    inserts: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def plan_offer_changes(wanted: dict[int, dict[int, Offer]], stored: list[dict],
                       numbers: dict[int, str]) -> OfferPlan:
    """New offers (written and announced), offers again (written, not announced), ended offers, renamed
    courses. ``stored``: PSIber's rows (employee_id, moodle_course_id, course_code, course_name, offered).
    One outcome per employee and kind of change, naming the courses (a first night offers every course
    to everyone: one report line per employee, not per offer)."""
    plan = OfferPlan()
    rows = {(int(r["employee_id"]), int(r["moodle_course_id"])): r for r in stored}
    changed: dict[tuple[int, str], list[str]] = {}
    for employee_id, courses in sorted(wanted.items()):
        for course_id, offer in sorted(courses.items()):
            row = rows.get((employee_id, course_id))
            values = {"employee_id": employee_id, "moodle_course_id": course_id, "course_code": offer.course_code,
                      "course_name": offer.course_name}
            if row is None:
                plan.inserts.append(values)
                plan.notifications.append(new_course(employee_id, course_id, offer.course_code, offer.course_name))
                changed.setdefault((employee_id, "offered"), []).append(offer.course_code)
            elif not int(row["offered"]):
                plan.updates.append({**values, "offered": 1})
                changed.setdefault((employee_id, "offered_again"), []).append(offer.course_code)
            elif (row["course_code"], row["course_name"]) != (offer.course_code, offer.course_name):
                plan.updates.append({**values, "offered": 1})
    for (employee_id, course_id), row in sorted(rows.items()):
        if int(row["offered"]) and course_id not in wanted.get(employee_id, {}):
            plan.updates.append({"employee_id": employee_id, "moodle_course_id": course_id,
                                 "course_code": row["course_code"], "course_name": row["course_name"], "offered": 0})
            changed.setdefault((employee_id, "withdrawn"), []).append(row["course_code"])
    plan.outcomes = [Outcome(numbers.get(employee_id) or f"PSIber employee row {employee_id}", action,
                             f"{', '.join(codes)}: {OFFER_CHANGES[action]}", flow=FLOW)
                     for (employee_id, action), codes in sorted(changed.items())]
    return plan

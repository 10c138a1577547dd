"""Which Moodle courses ESS offers to which employees, and what that changes in PSIber (SPEC F8).

Pure functions over plain records: the integration's offer rules, Moodle's courses and categories
as the courses flow read them (no Moodle call of its own), the employees of the users flow's
extract, and what PSIber holds (``ess_db``). Offers are planned and kept by group (employees the
same rules match are offered the same courses), so a night's work follows the employees and the
courses, not their product. A course is announced the first time it is offered to an employee,
never again: the courses ever offered to each employee are kept, so a course hidden and shown
again (or a rule changed back) is offered again silently.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from psiber.config import CONFIG_OWNER, EssOffer, Integration
from psiber.course_plan import _plain, course_code, real_courses
from psiber.ess_notifications import Notification, courses_offered, new_course
from sync_common.outcomes import Outcome

FLOW = "ess"
CHECKBOX = "checkbox"
OFFER_CHANGES = {
    "offered": "offered in ESS, the employee notified",
    "offered_again": "offered again (announced before, so not again)",
    "withdrawn": "no longer offered (course hidden or gone, outside the offer rules, or the employee no longer active)",
}
# An employee offered more courses than this at once (their first offers, a rule widened) is told once, with how
# many, rather than once per course.
ANNOUNCED_ONE_BY_ONE = 5
LISTED_CODES = 10  # course codes a report line names; the rest are counted


@dataclass(frozen=True)
class Offer:
    moodle_course_id: int
    course_code: str
    course_name: str


@dataclass(frozen=True)
class WantedOffers:
    """This run's offers, as small as the rules make them: employees the same rules match are offered
    the same courses, so each employee names a group of courses (10,000 employees offered 300 courses
    would otherwise be 3 million offers). ``courses``: every course offered, by Moodle id; ``groups``:
    sorted Moodle course ids; ``employee_groups``: every active employee in scope, the index of their
    group (that of no course when no rule matches them)."""

    courses: dict[int, Offer]
    groups: list[tuple[int, ...]]
    employee_groups: dict[int, int]

    @property
    def count(self) -> int:
        return sum(len(self.groups[group]) * employees for group, employees in Counter(self.employee_groups.values())
                   .items())

    def employee_groups_now(self) -> dict[int, str]:
        """The fingerprint of each employee's group (its courses, codes and names), for the employees offered a
        course: what a refresh compares with what PSIber holds."""
        of_group = {index: hashlib.sha256(json.dumps([[course_id, self.courses[course_id].course_code,
                                                      self.courses[course_id].course_name] for course_id in group])
                                         .encode()).hexdigest() for index, group in enumerate(self.groups) if group}
        return {employee: of_group[group] for employee, group in self.employee_groups.items() if group in of_group}

    def offers_of(self, employee_id: int) -> dict[int, Offer]:
        group = self.employee_groups.get(employee_id)
        return {} if group is None else {course_id: self.courses[course_id] for course_id in self.groups[group]}

    def run_file(self) -> dict:
        return {"offer_groups": self.groups, "employee_offer_groups": self.employee_groups}

    @staticmethod
    def by_employee(run_file: dict) -> dict[int, frozenset[int]]:
        """Offered Moodle course ids by employee id, from :meth:`run_file`'s content (one set per group)."""
        groups = [frozenset(group) for group in run_file["offer_groups"]]
        return {int(employee): groups[group] for employee, group in run_file["employee_offer_groups"].items()}


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


def in_scope(employee: dict, active: set[str]) -> bool:
    """Active employees (``active``: the active statuses, folded) on a payroll PSIber knows (an unknown payroll is
    an invalid record of the users flow)."""
    return bool(employee.get("known_payroll_code")) and \
        str(employee.get("employment_status") or "").strip().casefold() in active


def rule_employees(rule: EssOffer, employees: list[dict]) -> list[dict]:
    payrolls = None if rule.payrolls is None else _folded(rule.payrolls)
    types = None if rule.employment_types is None else _folded(rule.employment_types)
    return [e for e in employees
            if (payrolls is None or str(e.get("payroll_code") or "").strip().casefold() in payrolls)
            and (types is None or str(e.get("employment_type") or "").strip().casefold() in types)]


def wanted_offers(integration: Integration, employees: list[dict], courses: list[dict],
                  categories: list[dict]) -> tuple[WantedOffers, list[Outcome]]:
    """Every active employee's offered courses, and a warning per rule part that matches nothing on the
    site (a misspelt category or field offers nothing, silently otherwise)."""
    active = _folded(integration.users.active_statuses)
    eligible = [e for e in employees if in_scope(e, active)]
    rules_of: dict[int, list[int]] = {int(e["employee_id"]): [] for e in eligible}
    offered: dict[int, Offer] = {}
    rule_course_ids: list[set[int]] = []
    warnings = []
    for number, rule in enumerate(integration.ess.offers, start=1):
        chosen, problems = rule_courses(rule, courses, categories)
        warnings += [Outcome(f"ESS offer rule {number}", "warning", f"{problem}: this rule offers nothing through it",
                             CONFIG_OWNER, flow=FLOW) for problem in problems]
        offered.update((int(c["id"]), Offer(int(c["id"]), course_code(c), _plain(c.get("fullname")))) for c in chosen)
        rule_course_ids.append({int(c["id"]) for c in chosen})
        for employee in rule_employees(rule, eligible):
            rules_of[int(employee["employee_id"])].append(number - 1)
    union_of: dict[tuple[int, ...], tuple[int, ...]] = {}
    group_of: dict[tuple[int, ...], int] = {}
    employee_groups = {}
    for employee_id, rules in rules_of.items():
        matched = tuple(rules)
        if matched not in union_of:
            union_of[matched] = tuple(sorted(set().union(*(rule_course_ids[rule] for rule in matched))))
        employee_groups[employee_id] = group_of.setdefault(union_of[matched], len(group_of))
    return WantedOffers(offered, list(group_of), employee_groups), warnings


@dataclass(frozen=True)
class HeldOffers:
    """What PSIber holds of an employee's offers: their group now (None: offered nothing now) and the set of the
    courses ever offered to them, both by fingerprint."""

    offer_group: str | None
    offered_ever: str


def changed_employees(groups_now: dict[int, str], held: dict[int, HeldOffers]) -> list[int]:
    """The employees whose offers change: their group now is not the one PSIber holds (a new employee offered a
    course, one offered nothing any more, a course added, hidden or renamed in their group)."""
    return sorted(e for e in groups_now.keys() | held.keys()
                  if groups_now.get(e) != (held[e].offer_group if e in held else None))


def course_set_fingerprint(course_ids: Iterable[int]) -> str:
    return hashlib.sha256(json.dumps(sorted(course_ids)).encode()).hexdigest()


@dataclass(frozen=True)
class OfferChanges:
    """A refresh's writes: each changed employee's row (employee id, group, set of courses ever offered), the
    groups and sets those rows name, the notifications, and one outcome per employee and kind of change."""

    employees: list[tuple[int, str | None, str]]
    groups: dict[str, list[Offer]]
    ever_sets: dict[str, frozenset[int]]
    notifications: list[Notification]
    outcomes: list[Outcome]


@dataclass(frozen=True)
class _Change:
    """What a change of group does to the employees who make it (the same for each of them)."""

    started: list[Offer]
    reasons: list[tuple[str, str]]
    offered_ever: str
    ever_ids: frozenset[int]


def _listed(offers: list[Offer]) -> str:
    codes = ", ".join(offer.course_code for offer in offers[:LISTED_CODES])
    return codes if len(offers) <= LISTED_CODES else f"{codes} and {len(offers) - LISTED_CODES} more"


def _change(before: dict[int, Offer], ever: frozenset[int], after: dict[int, Offer]) -> _Change:
    started = [after[c] for c in sorted(after.keys() - ever)]
    by_change = {"offered": started, "offered_again": [after[c] for c in sorted((after.keys() - before.keys()) & ever)],
                 "withdrawn": [before[c] for c in sorted(before.keys() - after.keys())]}
    ever_ids = ever | after.keys()
    return _Change(started, [(change, f"{_listed(offers)}: {OFFER_CHANGES[change]}")
                             for change, offers in by_change.items() if offers],
                   course_set_fingerprint(ever_ids), frozenset(ever_ids))


def plan_offer_changes(wanted: WantedOffers, changed: list[int], groups_now: dict[int, str],
                       held: dict[int, HeldOffers],
                       held_groups: dict[str, dict[int, Offer]], held_ever: dict[str, frozenset[int]],
                       numbers: dict[int, str]) -> OfferChanges:
    """The writes that bring PSIber's offers to ``wanted``, for the employees whose group changed (``changed``,
    from :func:`changed_employees`). ``held_groups`` and ``held_ever``: the courses of the groups and sets those
    employees hold. Employees who make the same change (a first night: everyone of a group) share one computation,
    so the work follows the employees and the groups, not employees × courses; an employee offered many new
    courses at once gets one notification."""
    changes: dict[tuple[str | None, str, str | None], _Change] = {}
    plan = OfferChanges([], {}, {}, [], [])
    for employee in changed:
        before = held.get(employee, HeldOffers(None, ""))
        group = groups_now.get(employee)
        key = (before.offer_group, before.offered_ever, group)
        if key not in changes:
            after = wanted.offers_of(employee) if group else {}
            changes[key] = _change(held_groups.get(before.offer_group or "", {}),
                                   held_ever.get(before.offered_ever, frozenset()), after)
            if group:
                plan.groups[group] = list(after.values())
            plan.ever_sets[changes[key].offered_ever] = changes[key].ever_ids
        change = changes[key]
        plan.employees.append((employee, group, change.offered_ever))
        record = numbers.get(employee) or f"PSIber employee row {employee}"
        plan.outcomes.extend(Outcome(record, action, reason, flow=FLOW) for action, reason in change.reasons)
        if len(change.started) > ANNOUNCED_ONE_BY_ONE:
            plan.notifications.append(courses_offered(employee, len(change.started), change.offered_ever))
        else:
            plan.notifications.extend(new_course(employee, offer.moodle_course_id, offer.course_code,
                                                 offer.course_name) for offer in change.started)
    return plan

"""Which Moodle courses ESS offers to which employees, and what that changes in PSIber (SPEC F8).

Pure functions over plain records: the integration's offer rules, Moodle's courses and categories
as the courses flow read them (no Moodle call of its own), the employees of the users flow's
extract, and the offer changes PSIber's database finds against what it holds (``ess_db``: the
offers are too many to compare one by one here). A course is announced the first time it is
offered to an employee, never again: an offer that ends keeps its row, so a course hidden and
shown again (or a rule changed back) is offered again silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from psiber.config import CONFIG_OWNER, EssOffer, Integration
from psiber.course_plan import _plain, course_code, real_courses
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
        return sum(len(self.groups[group]) for group in self.employee_groups.values())

    def fingerprints(self) -> dict[int, str]:
        """Each employee's offers as a fingerprint of the courses, codes and names offered (one per group): what a
        refresh compares with the last one's to find the employees whose offers change."""
        of_group = [hashlib.sha256(json.dumps([[course_id, self.courses[course_id].course_code,
                                                self.courses[course_id].course_name] for course_id in group])
                                   .encode()).hexdigest() for group in self.groups]
        return {employee: of_group[group] for employee, group in self.employee_groups.items()}

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


def offer_outcomes(changes: Iterable[tuple[int, str, str]], numbers: dict[int, str]) -> list[Outcome]:
    """One outcome per employee and kind of change, naming the courses: ``changes`` are (employee id,
    change, course code), ordered by employee and change (a first night offers every course to
    everyone: one report line per employee, not per offer)."""
    return [Outcome(numbers.get(employee_id) or f"PSIber employee row {employee_id}", change,
                    f"{', '.join(code for _, _, code in rows)}: {OFFER_CHANGES[change]}", flow=FLOW)
            for (employee_id, change), rows in groupby(changes, key=itemgetter(0, 1))]

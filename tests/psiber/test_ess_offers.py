"""Table tests of the ESS offer rules: which visible Moodle courses each employee is offered."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from factories import integration
from psiber import ess_offers
from psiber.ess_offers import WantedOffers, wanted_offers

CATEGORIES = [
    {"id": 1, "name": "Category 1", "idnumber": None, "path": "/1"},
    {"id": 5, "name": "Staff Development", "idnumber": "STAFF-DEV", "path": "/5"},
    {"id": 6, "name": "IT skills", "idnumber": "", "path": "/5/6"},
    {"id": 7, "name": "Drivers", "idnumber": "DRV", "path": "/7"},
    {"id": 15, "name": "Other &amp; more", "idnumber": "", "path": "/15"},
]


def course(course_id: int, shortname: str, category: int, *, visible: int = 1, offered: int | None = None,
           idnumber: str = "") -> dict:
    fields = [{"name": "SAQA Registered?", "shortname": "saqaregistered", "type": "checkbox", "valueraw": 1,
               "value": "Yes"}]
    if offered is not None:
        fields.append({"name": "Offered in ESS", "shortname": "offerediness", "type": "checkbox", "valueraw": offered,
                       "value": "Yes" if offered else "No"})
    return {"id": course_id, "shortname": shortname, "fullname": f"{shortname} &amp; more", "idnumber": idnumber,
            "categoryid": category, "visible": visible, "format": "topics", "customfields": fields}


COURSES = [
    {"id": 1, "shortname": "site", "fullname": "Site", "categoryid": 0, "visible": 1, "format": "site"},
    course(9, "ESS-EXCEL", 5, offered=1, idnumber="EXCEL"),
    course(10, "ESS-POPIA", 5, offered=1),
    course(11, "ESS-LEAD", 5, visible=0, offered=1),
    course(12, "HR-AUDIT", 5, offered=0),
    course(13, "IT-101", 6),
    course(14, "DRV-101", 7, offered=1),
    course(15, "MIXED", 15),
]


def employee(employee_id: int, payroll: str = "ABG", kind: str = "Permanent", status: str = "Active",
             known_payroll: bool = True) -> dict:
    return {"employee_id": employee_id, "employee_number": f"E{employee_id:03d}", "payroll_code": payroll,
            "known_payroll_code": payroll if known_payroll else None, "employment_status": status,
            "employment_type": kind}


EMPLOYEES = [employee(1), employee(2, payroll="DRV", kind="Contract"), employee(3, status="Terminated"),
             employee(4, payroll="GONE", known_payroll=False), employee(5, status=" active ")]


def offered(*rules: dict, employees: list[dict] = EMPLOYEES) -> dict[int, list[str]]:
    """Offered course codes by employee, as the enrolment step reads them back from the run file."""
    wanted, _ = wanted_offers(integration(flows=["users", "courses", "ess"], ess={"offers": list(rules)}),
                              employees, COURSES, CATEGORIES)
    by_employee = WantedOffers.by_employee(json.loads(json.dumps(wanted.run_file())))
    assert wanted.count == sum(map(len, by_employee.values()))
    return {employee_id: sorted(wanted.courses[course].course_code for course in courses)
            for employee_id, courses in by_employee.items()}


@pytest.mark.parametrize(("rules", "expected"), [
    # a category by name: its visible courses and its subcategories' (ESS-LEAD is hidden)
    ([{"categories": ["Staff Development"]}],
     {1: ["ESS-POPIA", "EXCEL", "HR-AUDIT", "IT-101"], 2: ["ESS-POPIA", "EXCEL", "HR-AUDIT", "IT-101"],
      5: ["ESS-POPIA", "EXCEL", "HR-AUDIT", "IT-101"]}),
    # by ID number, in any letter case
    ([{"categories": ["drv"]}], {1: ["DRV-101"], 2: ["DRV-101"], 5: ["DRV-101"]}),
    # a ticked checkbox anywhere on the site (never-set and unticked read the same)
    ([{"custom_field": "offerediness"}],
     dict.fromkeys((1, 2, 5), ["DRV-101", "ESS-POPIA", "EXCEL"])),
    # both: ticked courses of the category
    ([{"categories": ["Staff Development"], "custom_field": "offerediness"}],
     {1: ["ESS-POPIA", "EXCEL"], 2: ["ESS-POPIA", "EXCEL"], 5: ["ESS-POPIA", "EXCEL"]}),
    # limited to a payroll, and to an employment type; rules add up
    ([{"categories": ["Drivers"], "payrolls": ["DRV"]},
      {"categories": ["IT skills"], "employment_types": ["permanent"]}],
     {1: ["IT-101"], 2: ["DRV-101"], 5: ["IT-101"]}),
    # a category name as Moodle formats it for HTML is matched by its plain text
    ([{"categories": ["Other & more"]}], {1: ["MIXED"], 2: ["MIXED"], 5: ["MIXED"]}),
])
def test_offer_rules(rules, expected):
    result = offered(*rules)
    assert {employee_id: codes for employee_id, codes in result.items() if codes} == expected
    assert set(result) == {1, 2, 5}  # terminated employees and those on an unknown payroll get no offers


def test_an_offer_carries_the_course_code_and_its_plain_name():
    wanted, _ = wanted_offers(integration(flows=["users", "courses", "ess"],
                                          ess={"offers": [{"categories": ["Staff Development"]}]}),
                              [employee(1)], COURSES, CATEGORIES)
    assert 9 in wanted.groups[wanted.employee_groups[1]]
    assert wanted.courses[9].course_code == "EXCEL" and wanted.courses[9].course_name == "ESS-EXCEL & more"


def test_employees_the_same_rules_match_share_one_group_of_courses():
    rules = [{"categories": ["Drivers"], "payrolls": ["DRV"]}, {"categories": ["IT skills"]}]
    employees = [employee(1), employee(2, payroll="DRV"), employee(6), employee(7, payroll="DRV")]
    wanted, _ = wanted_offers(integration(flows=["users", "courses", "ess"], ess={"offers": rules}),
                              employees, COURSES, CATEGORIES)
    assert wanted.groups == [(13,), (13, 14)]
    assert wanted.employee_groups == {1: 0, 2: 1, 6: 0, 7: 1}


@pytest.mark.parametrize(("rule", "problem"), [
    ({"categories": ["Staff Devlopment"]}, "category 'Staff Devlopment' is not a Moodle course category"),
    ({"custom_field": "offeredinesss"}, "Moodle has no course custom field 'offeredinesss'"),
])
def test_a_rule_that_matches_nothing_on_the_site_is_a_warning_for_the_file_maintainer(rule, problem):
    wanted, warnings = wanted_offers(integration(flows=["users", "courses", "ess"], ess={"offers": [rule]}),
                                     [employee(1)], COURSES, CATEGORIES)
    assert (wanted.groups, wanted.employee_groups) == ([()], {1: 0})
    [warning] = warnings
    assert (warning.record, warning.action, warning.flow) == ("ESS offer rule 1", "warning", "ess")
    assert warning.reason.startswith(problem) and "integration files" in warning.owner


def test_a_custom_field_that_is_not_a_checkbox_is_a_warning():
    text_field = course(20, "TXT", 5)
    text_field["customfields"].append({"shortname": "offerediness", "type": "text", "valueraw": "1", "value": "1"})
    _, warnings = wanted_offers(integration(flows=["users", "courses", "ess"],
                                            ess={"offers": [{"custom_field": "offerediness"}]}),
                                [employee(1)], [text_field], CATEGORIES)
    assert [w.reason.split(":")[0] for w in warnings] == ["course custom field 'offerediness' is not a checkbox"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"flows": ["users", "courses", "ess"]}, "at least one rule in 'ess.offers'"),
    ({"flows": ["users", "ess"], "ess": {"offers": [{"categories": ["A"]}]}}, "'ess' needs the 'users' and 'courses'"),
    ({"flows": ["users", "courses", "ess"], "ess": {"offers": [{"payrolls": ["ABG"]}]}},
     "needs 'categories', 'custom_field' or both"),
])
def test_bad_ess_settings_are_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        integration(**settings)


def test_employees_who_make_the_same_change_are_planned_once(monkeypatch):
    """1,000 employees in two groups of 200 courses, on a first night: two changes worked out, 400 group courses to
    write and a row and one notification per employee, not 200,000 of each."""
    worked_out = []
    real_change = ess_offers._change
    monkeypatch.setattr(ess_offers, "_change", lambda *args: worked_out.append(args) or real_change(*args))
    courses = {n: ess_offers.Offer(n, f"C{n:03d}", f"Course {n}") for n in range(400)}
    wanted = WantedOffers(courses, [tuple(range(200)), tuple(range(200, 400))],
                          {employee: employee % 2 for employee in range(1_000)})
    groups_now = wanted.employee_groups_now()
    changed = ess_offers.changed_employees(groups_now, {})
    plan = ess_offers.plan_offer_changes(wanted, changed, groups_now, {}, {}, {}, {})
    assert len(worked_out) == 2
    assert sum(len(offers) for offers in plan.groups.values()) == 400 and len(plan.ever_sets) == 2
    assert len(plan.employees) == len(plan.notifications) == len(plan.outcomes) == 1_000
    assert {n.kind for n in plan.notifications} == {"courses_offered"}

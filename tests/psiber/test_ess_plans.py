"""Plan tests of ESS notifications (a new assessment, a changed due date) and of enrolment requests: plain
records in, plans out. Offer changes are found by the database: test_ess_offer_changes.py."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from psiber.ess_assessments import (
    Assessment,
    assessment_notifications,
    assessments_from_answers,
    plan_assessment_changes,
)
from psiber.ess_enrolments import NOT_ACTIVE, NOT_OFFERED, REFUSED, Request, moodle_refusal, plan_requests

NUMBERS = {1: "E001", 2: "E002"}
ZONE = ZoneInfo("Africa/Johannesburg")
NOW = 1_795_442_897  # 2026-11-23
DUE = 1_801_846_800  # 2027-02-05 17:00 Europe/London = 19:00 in Johannesburg


def assign(instance: int, course: int, name: str, due: int, visible: int = 1) -> dict:
    return {"id": instance, "course": course, "name": name, "duedate": due, "cmid": 100 + instance}


MOODLE_ASSIGN = [{"courses": [{"id": 9, "assignments": [assign(1, 9, "Budget spreadsheet", DUE)]},
                              {"id": 10, "assignments": []}], "warnings": []}]
MOODLE_QUIZ = [{"quizzes": [{"id": 3, "course": 10, "name": "POPIA knowledge check", "visible": True,
                             "timeopen": DUE - 86_400, "timeclose": DUE},
                            {"id": 4, "course": 10, "name": "Draft", "visible": False, "timeclose": 0}],
                "warnings": []}]
COURSES = {9: ("ESS-EXCEL", "Excel for Office Staff"), 10: ("ESS-POPIA", "POPIA Awareness")}


def test_assessments_are_read_from_assignments_and_visible_quizzes():
    assert assessments_from_answers(MOODLE_ASSIGN, MOODLE_QUIZ) == [
        Assessment("assign", 1, 9, "Budget spreadsheet", DUE), Assessment("quiz", 3, 10, "POPIA knowledge check", DUE)]


def test_a_new_assessment_is_announced_to_the_students_of_its_course_once():
    current = assessments_from_answers(MOODLE_ASSIGN, MOODLE_QUIZ)
    changes = plan_assessment_changes(current, [], NOW)
    assert changes.new == current and changes.to_store == current and changes.courses_to_announce == [9, 10]
    notifications = assessment_notifications(changes, {9: [1, 2], 10: [2]}, COURSES, ZONE)
    assert [(n.employee_id, n.key, n.assessment) for n in notifications] == [
        (1, "new_assessment:assign:1", "Budget spreadsheet"), (2, "new_assessment:assign:1", "Budget spreadsheet"),
        (2, "new_assessment:quiz:3", "POPIA knowledge check")]
    assert notifications[0].text == ("New assignment in Excel for Office Staff: 'Budget spreadsheet', due Friday "
                                     "5 February 2027, 19:00.")
    assert notifications[2].text.endswith("'POPIA knowledge check', closes Friday 5 February 2027, 19:00.")

    stored = [{**a.to_dict()} for a in current]
    assert plan_assessment_changes(current, stored, NOW).to_store == []  # seen: nothing to announce again


def test_an_assessment_already_due_is_remembered_but_not_announced():
    past = [Assessment("assign", 5, 9, "Last year's test", NOW - 86_400), Assessment("quiz", 6, 9, "Open quiz", None)]
    changes = plan_assessment_changes(past, [], NOW)
    assert changes.to_store == past and changes.new == [past[1]]  # no due date: announced
    assert assessment_notifications(changes, {9: [1]}, COURSES, ZONE)[0].text.endswith("'Open quiz', no due date.")


def test_a_changed_due_date_is_announced_once_per_new_date():
    budget = Assessment("assign", 1, 9, "Budget spreadsheet", DUE)
    stored = [budget.to_dict()]
    moved = Assessment("assign", 1, 9, "Budget spreadsheet", DUE + 7 * 86_400)
    changes = plan_assessment_changes([moved], stored, NOW)
    assert (changes.new, changes.changed, changes.to_store) == ([], [moved], [moved])
    [notification] = assessment_notifications(changes, {9: [1]}, COURSES, ZONE)
    assert notification.kind == "assessment_changed"
    assert notification.key == f"assessment_changed:assign:1:{DUE + 7 * 86_400}"
    assert notification.text == ("Date changed: the assignment 'Budget spreadsheet' in Excel for Office Staff: now "
                                 "due Friday 12 February 2027, 19:00.")
    moved_back = plan_assessment_changes([budget], [moved.to_dict()], NOW)
    assert assessment_notifications(moved_back, {9: [1]}, COURSES, ZONE)[0].key == f"assessment_changed:assign:1:{DUE}"

    renamed = Assessment("assign", 1, 9, "Budget (final)", DUE)
    changes = plan_assessment_changes([renamed], stored, NOW)
    assert (changes.new, changes.changed, changes.to_store) == ([], [], [renamed])  # stored, not announced


def request(employee_id: int, course: int, approved: bool = False) -> Request:
    return Request(employee_id, NUMBERS.get(employee_id), course, f"2026-11-2{employee_id} 08:00:00", approved)


OFFERS = {1: {9, 10}, 2: {9}, 3: set()}
ACCOUNTS = {1: 501, 2: 502}


@pytest.mark.parametrize(("req", "approval", "expected"), [
    (request(1, 9), False, ("enrol", 501)),
    (request(2, 10), False, (REFUSED, NOT_OFFERED)),
    (request(4, 9), False, (REFUSED, NOT_ACTIVE)),
    (request(3, 9), False, (REFUSED, NOT_OFFERED)),
    (request(1, 9), True, ("waiting", None)),
    (request(1, 9, approved=True), True, ("enrol", 501)),
])
def test_request_plan(req, approval, expected):
    plan = plan_requests([req], OFFERS, ACCOUNTS, approval, {})
    if expected[0] == "enrol":
        assert plan.to_enrol == [(req, expected[1])] and not plan.decisions
    elif expected[0] == "waiting":
        assert plan.waiting == [req] and not plan.decisions and not plan.to_enrol
    else:
        [decision] = plan.decisions
        assert (decision.state, decision.reason) == expected and decision.owner == "PSIber HR"


def test_an_employee_without_a_moodle_account_is_refused_with_the_users_flow_reason():
    offers = {**OFFERS, 3: {9}}
    [decision] = plan_requests([Request(3, "E003", 9, "2026-11-20 08:00:00", False)], offers, ACCOUNTS, False,
                               {3: "invalid: surname is missing"}).decisions
    assert decision.reason == ("you have no Moodle account yet (invalid: surname is missing); ask again once HR has "
                               "fixed your record")


@pytest.mark.parametrize(("code", "reason"), [
    ("wsnoinstance", "the course has no manual enrolment method in Moodle (or it is disabled)"),
    ("invaliduser", "your Moodle account no longer exists"),
    ("somethingelse", "Moodle refused the enrolment (a message)"),
])
def test_moodle_refusals_read_as_reasons(code, reason):
    assert moodle_refusal(code, "a message") == (reason, "Moodle administrator")

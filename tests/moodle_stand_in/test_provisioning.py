"""State changes of the stand-in's provisioning functions, which the contract replay checks by shape only:
what each call leaves on the site (the live site's behaviour, ../shared/moodle-contract-school/README.md)."""

from __future__ import annotations

import hashlib
import time

import pytest
from test_moodle_stand_in import TOKEN, call

from moodle_stand_in import MoodleStandIn
from moodle_stand_in.courses import ROLES

START = 1799798400
WEEK = 7 * 86_400


@pytest.fixture
def site():
    with MoodleStandIn(TOKEN) as running:
        running.grade8 = running.add_category("Grade 8", idnumber="GFH-GR8")["id"]
        for name in ("tmokoena", "sdlamini", "lkhumalo"):
            running.add_user(username=name, firstname=name, lastname="X", email=f"{name}@example.com",
                             idnumber=name.upper())
        running.ids = {u["username"]: u["id"] for u in running.users.values()}
        yield running


def course(site, shortname: str, **fields) -> dict:
    return {"fullname": shortname, "shortname": shortname, "categoryid": site.grade8, **fields}


def roles(site, courseid: int, userid: int) -> list[str]:
    _, users = call(site, "core_enrol_get_enrolled_users", {"courseid": courseid,
                                                            "options": [{"name": "userfields", "value": "id,roles"}]})
    return [role["shortname"] for user in users if user["id"] == userid for role in user["roles"]]


def test_create_courses_is_all_or_nothing_and_weeks_ignores_the_end_date(site):
    status, answer = call(site, "core_course_create_courses", {"courses": [
        course(site, "8A-MATH", idnumber="CLS-1"), course(site, "8A-ENG", idnumber="CLS-1")]})
    assert answer["errorcode"] == "courseidnumbertaken"
    assert {c["shortname"] for c in site.courses.values()} == {"stand-in"}

    _, made = call(site, "core_course_create_courses", {"courses": [
        course(site, "8A-MATH", idnumber="CLS-1", startdate=START, enddate=START + 52 * WEEK),
        course(site, "8A-ENG", format="weeks", startdate=START, enddate=START + 52 * WEEK),
        course(site, "8A-HIST", format="weeks", startdate=START, enddate=START + 52 * WEEK,
               courseformatoptions=[{"name": "automaticenddate", "value": 0}])]})
    math, english, history = (site.courses[c["id"]] for c in made)
    assert math["enddate"] == START + 52 * WEEK and math["numsections"] == 0
    assert english["enddate"] == START + WEEK  # automatic end date: start + sections (none: one week)
    assert history["enddate"] == START + 52 * WEEK
    assert not math["has_completion_criteria"]


def test_update_courses_applies_good_items_and_a_bad_category_move_half_applies(site):
    _, [made] = call(site, "core_course_create_courses", {"courses": [course(site, "8A-MATH", idnumber="CLS-1")]})
    other = site.add_course("9B-MATH", categoryid=site.grade8, idnumber="CLS-2")
    _, answer = call(site, "core_course_update_courses", {"courses": [
        {"id": other["id"], "idnumber": "CLS-1", "fullname": "never"}, {"id": made["id"], "fullname": "Renamed"}]})
    assert [w["warningcode"] for w in answer["warnings"]] == ["courseidnumbertaken"]
    assert site.courses[made["id"]]["fullname"] == "Renamed" and site.courses[other["id"]]["fullname"] == "9B-MATH"

    _, answer = call(site, "core_course_update_courses", {"courses": [{"id": made["id"], "categoryid": 9999}]})
    assert answer["warnings"][0]["message"] == "Can't find data record in database table course_categories."
    assert (site.courses[made["id"]]["category"], site.courses[made["id"]]["visible"]) == (9999, 0)


def test_enrol_adds_roles_rewrites_status_and_dates_and_is_one_transaction(site):
    courseid = site.add_course("8A-MATH", categoryid=site.grade8)["id"]
    student = site.ids["sdlamini"]
    site.enrol(student, courseid, suspended=True, timestart=START, timeend=START + WEEK)
    _, answer = call(site, "enrol_manual_enrol_users", {"enrolments": [
        {"roleid": ROLES["editingteacher"], "userid": student, "courseid": courseid}]})
    assert answer is None
    record = site.enrolments[courseid][student]
    assert (record["status"], record["timestart"], record["timeend"]) == (0, 0, 0)
    assert roles(site, courseid, student) == ["student", "editingteacher"]

    _, answer = call(site, "enrol_manual_enrol_users", {"enrolments": [
        {"roleid": ROLES["student"], "userid": site.ids["lkhumalo"], "courseid": courseid},
        {"roleid": ROLES["student"], "userid": 999999, "courseid": courseid}]})
    assert answer["errorcode"] == "invaliduser"
    assert site.ids["lkhumalo"] not in site.enrolments[courseid]

    _, answer = call(site, "core_role_unassign_roles", {"unassignments": [
        {"roleid": ROLES["student"], "userid": student, "contextlevel": "course", "instanceid": courseid}]})
    assert answer is None and roles(site, courseid, student) == ["editingteacher"]


def test_manual_enrolment_method_absent_or_disabled(site):
    absent = site.add_course("8A-MATH", categoryid=site.grade8)["id"]
    disabled = site.add_course("8A-ENG", categoryid=site.grade8)["id"]
    student = site.ids["sdlamini"]
    for courseid in (absent, disabled):
        site.enrol(student, courseid)
    site.set_manual_enrolment(absent, "absent")
    site.set_manual_enrolment(disabled, "disabled")
    for courseid in (absent, disabled):
        _, answer = call(site, "enrol_manual_enrol_users", {"enrolments": [
            {"roleid": ROLES["student"], "userid": site.ids["lkhumalo"], "courseid": courseid}]})
        assert answer["errorcode"] == "wsnoinstance" and f"(id = {courseid})" in answer["message"]
    _, answer = call(site, "enrol_manual_unenrol_users", {"enrolments": [{"userid": student, "courseid": absent}]})
    assert answer["errorcode"] == "wsnoinstance"
    _, answer = call(site, "enrol_manual_unenrol_users", {"enrolments": [{"userid": student, "courseid": disabled}]})
    assert answer is None and student not in site.enrolments[disabled] and student in site.enrolments[absent]


def test_delete_users_is_one_transaction_and_empties_the_link(site):
    courseid = site.add_course("8A-MATH", categoryid=site.grade8)["id"]
    student, teacher = site.ids["sdlamini"], site.ids["tmokoena"]
    site.enrol(student, courseid)
    _, answer = call(site, "core_user_delete_users", {"userids": [student, 999999]})
    assert answer["errorcode"] == "invaliduser" and student in site.users

    _, answer = call(site, "core_user_delete_users", {"userids": [student, teacher]})
    assert answer is None and site.users[student]["deleted"] and student not in site.enrolments[courseid]
    _, found = call(site, "core_user_get_users_by_field", {"field": "idnumber", "values": ["SDLAMINI"]})
    assert found == []
    _, answer = call(site, "enrol_manual_enrol_users", {"enrolments": [
        {"roleid": ROLES["student"], "userid": student, "courseid": courseid}]})
    assert answer["errorcode"] == "userdeleted"
    _, answer = call(site, "core_user_delete_users", {"userids": [student]})
    assert answer["errorcode"] == "invaliduser"


def test_a_deleted_account_keeps_its_row_as_delete_user_leaves_it(site):
    """Live 4.5.6 (lab finding 01): found by id, renamed, e-mail the md5 of the old username, no ID number, no
    profile fields, ``suspended`` false, no ``deleted`` key; not found by its old values; not updatable."""
    student = site.ids["sdlamini"]
    site.users[student]["customfields"] = {"uifref": "U1"}
    site.delete_user(student)
    _, [row] = call(site, "core_user_get_users_by_field", {"field": "id", "values": [str(student)]})
    assert row["username"].startswith("sdlamini@example.com.") and row["username"].rsplit(".", 1)[1].isdigit()
    assert row["email"] == hashlib.md5(b"sdlamini").hexdigest()
    assert {"idnumber", "customfields", "deleted"}.isdisjoint(row) and row["suspended"] is False
    for field, value in (("username", "sdlamini"), ("email", "sdlamini@example.com"), ("idnumber", "SDLAMINI")):
        _, found = call(site, "core_user_get_users_by_field", {"field": field, "values": [value]})
        assert found == []
    _, found = call(site, "core_user_get_users", {"criteria": [{"key": "username", "value": row["username"]}]})
    assert found["users"] == []
    _, answer = call(site, "core_user_update_users", {"users": [{"id": student, "idnumber": "SDLAMINI"}]})
    assert answer["warnings"] == [{"item": "user", "itemid": student, "warningcode": "usernotupdateddeleted",
                                   "message": "error/usernotupdateddeleted"}]
    _, answer = call(site, "core_user_create_users", {"users": [{
        "username": "sdlamini", "firstname": "S", "lastname": "D", "email": "sdlamini@example.com",
        "idnumber": "SDLAMINI", "createpassword": 1}]})
    assert answer[0]["id"] != student


def test_delete_courses_per_item(site):
    courseid = site.add_course("8A-MATH", categoryid=site.grade8)["id"]
    site.enrol(site.ids["sdlamini"], courseid)
    _, answer = call(site, "core_course_delete_courses", {"courseids": [99999, courseid, 1]})
    assert [w["warningcode"] for w in answer["warnings"]] == ["unknowncourseidnumber", "cannotdeletecategorycourse"]
    assert courseid not in site.courses and courseid not in site.enrolments


def test_expired_enrolment_counts_as_suspended(site):
    courseid = site.add_course("8A-MATH", categoryid=site.grade8)["id"]
    site.enrol(site.ids["sdlamini"], courseid, timeend=int(time.time()) - 60)
    site.enrol(site.ids["lkhumalo"], courseid)
    _, active = call(site, "core_enrol_get_enrolled_users", {"courseid": courseid, "options": [
        {"name": "onlyactive", "value": "1"}]})
    assert [user["id"] for user in active] == [site.ids["lkhumalo"]]


def test_a_function_cannot_be_registered_twice():
    from moodle_stand_in.server import ws_function

    with pytest.raises(ValueError, match="registered twice"):
        ws_function("enrol_manual_enrol_users", {})(lambda site: None)

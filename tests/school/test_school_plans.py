"""The school plans on plain tables: users, courses and enrolments under each deletion setting."""

from __future__ import annotations

import pytest

from school.config import CourseDeletion, SchoolIntegration
from school.course_plan import check_course_guard, course_names, plan_course_changes
from school.enrolment_plan import check_enrolment_guard, new_id, plan_enrolments
from school.user_plan import check_user_guard, plan_user_changes

STUDENT, TEACHER = 5, 3
ROLES = {"student": STUDENT, "teacher": TEACHER}


def integration(courses: CourseDeletion = CourseDeletion.dont_delete, **settings) -> SchoolIntegration:
    return SchoolIntegration.model_validate({
        "name": "Test School", "moodle_conn_id": "m", "school_conn_id": "s", "deletion": {"courses": courses},
        "group_types": {"Subject": {"provisioning": "enabled", "category": "SUBJ", "format": "weeks",
                                    "visible": False},
                        "Registration": {"provisioning": "always_disabled", "category": "REG"}}, **settings})


def person(external_id: str, status: str = "active", **fields) -> dict:
    return {"external_id": external_id, "role": "student", "first_name": "Sipho", "last_name": "Dlamini",
            "email": f"{external_id.lower()}@school.example", "username": None, "status": status, **fields}


def user(user_id: int, idnumber: str = "", **fields) -> dict:
    return {"id": user_id, "username": f"user{user_id}", "email": f"user{user_id}@other.example",
            "firstname": "Sipho", "lastname": "Dlamini", "idnumber": idnumber, "suspended": False, **fields}


def mirrored(user_id: int, external_id: str, **fields) -> dict:
    """The Moodle account of person(external_id), as an earlier run left it."""
    return user(user_id, external_id, username=f"{external_id.lower()}@school.example",
                email=f"{external_id.lower()}@school.example", **fields)


def by_record(outcomes) -> dict[str, tuple[str, str]]:
    return {o.record: (o.action, o.reason) for o in outcomes}


# -- users


@pytest.mark.parametrize("delete_users", [False, True])
def test_leavers_are_suspended_or_deleted_as_the_setting_says(delete_users):
    people = [person("S-1", status="left"), person("S-2")]
    moodle = [mirrored(11, "S-1"), mirrored(12, "S-2"), mirrored(13, "S-3")]
    plan = plan_user_changes(people, ["S-1", "S-2"], moodle, {"S-1": 11, "S-2": 12, "S-3": 13},
                             delete_users=delete_users, auth="manual")
    if delete_users:
        assert [(d["external_id"], d["id"]) for d in plan.deletes] == [("S-1", 11), ("S-3", 13)]
        assert plan.updates == []
        assert "no longer in the MIS" in plan.deletes[1]["reason"]
    else:
        assert plan.deletes == []
        assert [(u["external_id"], u["action"], u["suspended"]) for u in plan.updates] == \
            [("S-1", "suspended", 1), ("S-3", "suspended", 1)]
        assert "not deleted (deletion of users is not allowed)" in plan.updates[0]["reason"]
    assert by_record(plan.outcomes)["S-2"] == ("unchanged", "")
    assert plan.leaving == 2 and plan.creates == []


def test_an_account_with_the_id_number_is_linked_never_duplicated():
    plan = plan_user_changes([person("S-1")], ["S-1"], [user(20, "S-1", firstname="Old")], {},
                             delete_users=False, auth="manual")
    assert plan.creates == []
    assert plan.links == [("S-1", 20)]
    assert plan.updates[0]["changed"] == ["email", "firstname", "username"]


def test_an_account_with_the_login_but_no_id_number_is_a_conflict_naming_it():
    holder = user(30, "", email="s-1@school.example")
    plan = plan_user_changes([person("S-1")], ["S-1"], [holder], {}, delete_users=False, auth="manual")
    action, reason = by_record(plan.outcomes)["S-1"]
    assert action == "conflict" and "Moodle user #30" in reason and "set its ID number to 'S-1'" in reason
    assert plan.creates == [] and plan.links == []


def test_an_account_whose_id_number_differs_only_in_case_or_spaces_is_a_conflict_and_two_accounts_with_one_too():
    for variant in ("s-1", " S-1", "S-1 "):
        other_case = plan_user_changes([person("S-1")], ["S-1"], [user(40, variant)], {}, delete_users=False,
                                       auth="manual")
        action, reason = by_record(other_case.outcomes)["S-1"]
        assert other_case.creates == [] and other_case.updates == [] and action == "conflict"
        assert f"Moodle user #40 has ID number '{variant}'" in reason and "no second account" in reason
    twice = plan_user_changes([person("S-1")], ["S-1"], [user(41, "S-1"), user(42, "S-1")], {},
                              delete_users=False, auth="manual")
    assert by_record(twice.outcomes)["S-1"][0] == "conflict" and "#41 and #42" in by_record(twice.outcomes)["S-1"][1]


def test_new_users_get_the_id_number_and_a_generated_password_and_returners_are_unsuspended():
    plan = plan_user_changes([person("S-1", username="SDlamini"), person("S-2")], ["S-1", "S-2"],
                             [mirrored(50, "S-2", suspended=True)], {"S-2": 50}, delete_users=False, auth="manual")
    assert plan.creates == [{"external_id": "S-1", "username": "sdlamini", "auth": "manual", "firstname": "Sipho",
                             "lastname": "Dlamini", "email": "s-1@school.example", "idnumber": "S-1",
                             "createpassword": 1}]
    assert [(u["action"], u["suspended"]) for u in plan.updates] == [("unsuspended", 0)]


def test_a_link_to_an_account_an_administrator_deleted_is_dropped_and_the_person_matched_again():
    plan = plan_user_changes([person("S-1")], ["S-1"], [], {"S-1": 70}, delete_users=False, auth="manual")
    assert plan.unlinks == ["S-1"] and [c["idnumber"] for c in plan.creates] == ["S-1"]


def deleted_row(user_id: int, old_username: str) -> dict:
    """A linked account as get_users_by_field answers it after an administrator's delete_user() (lab finding 05)."""
    return {"id": user_id, "username": f"{old_username}.1796580578", "firstname": "Sipho", "lastname": "Dlamini",
            "email": "badae376768a26a5bca436338f3e4abc", "suspended": False}


def test_a_link_to_an_account_moodle_still_answers_as_deleted_is_dropped_and_the_person_made_again():
    plan = plan_user_changes([person("S-1"), person("S-2")], ["S-1", "S-2"],
                             [deleted_row(70, "s-1@school.example"), deleted_row(71, "s-2@school.example"),
                              mirrored(80, "S-2")], {"S-1": 70, "S-2": 71}, delete_users=False, auth="manual")
    assert plan.updates == [] and [c["idnumber"] for c in plan.creates] == ["S-1"]
    assert plan.unlinks == ["S-1", "S-2"] and plan.links == [("S-2", 80)]
    warnings = [o for o in plan.outcomes if o.action == "warning"]
    assert [(o.record, o.owner) for o in warnings] == [("S-1", "Moodle administrator"), ("S-2", "Moodle administrator")]
    assert "account deleted in Moodle by an administrator: Moodle user #70" in warnings[0].reason


def test_a_gone_persons_link_to_a_deleted_account_is_dropped_and_a_hex_looking_email_alone_is_no_deletion():
    plan = plan_user_changes([], [], [deleted_row(70, "s-1@school.example")], {"S-1": 70}, delete_users=True,
                             auth="manual")
    assert plan.deletes == [] and plan.unlinks == ["S-1"]
    live = user(70, "S-1", username="s-1@school.example", email="badae376768a26a5bca436338f3e4abc")
    plan = plan_user_changes([person("S-1")], ["S-1"], [live], {"S-1": 70}, delete_users=False, auth="manual")
    assert plan.unlinks == [] and plan.creates == [] and [u["id"] for u in plan.updates] == [70]


def test_an_invalid_person_the_mis_still_has_is_not_treated_as_gone():
    plan = plan_user_changes([], ["S-1"], [mirrored(60, "S-1")], {"S-1": 60}, delete_users=True, auth="manual")
    assert plan.deletes == [] and plan.updates == []


def test_a_link_is_not_taken_for_a_person_gone_while_the_mis_has_a_variant_of_the_id():
    plan = plan_user_changes([], ["s-1"], [mirrored(60, "S-1")], {"S-1": 60}, delete_users=True, auth="manual")
    assert plan.deletes == [] and plan.updates == []


def test_the_user_guard_weighs_suspensions_and_deletions_against_linked_accounts():
    people = [person(f"S-{n}", status="left" if n < 3 else "active") for n in range(10)]
    moodle = [mirrored(100 + n, f"S-{n}") for n in range(10)]
    plan = plan_user_changes(people, [p["external_id"] for p in people], moodle, {}, delete_users=True,
                             auth="manual")
    assert "delete 3 of 10 linked Moodle users (30%)" in check_user_guard(plan, 0.2, 10)
    assert check_user_guard(plan, 0.3, 10) is None
    assert check_user_guard(plan, 0.2, 11) is None


# -- courses


def klass(external_id: str, group_type: str = "Subject", **fields) -> dict:
    return {"external_id": external_id, "code": "8A-MATH", "name": "Grade 8A Mathematics", "group_type": group_type,
            "sms_controlled": 1, "provisioning_override": None, "academic_year": 2027, **fields}


def course(course_id: int, idnumber: str, **fields) -> dict:
    return {"id": course_id, "idnumber": idnumber, "fullname": "Grade 8A Mathematics 2027",
            "shortname": "8A-MATH 2027", "categoryid": 7, "format": "weeks", "visible": 0, **fields}


CATEGORIES = [{"id": 7, "idnumber": "SUBJ"}, {"id": 8, "idnumber": "ARCHIVE"}]


@pytest.mark.parametrize(("setting", "deleted"), [(CourseDeletion.dont_delete, []),
                                                  (CourseDeletion.delete_only_empty, [91]),
                                                  (CourseDeletion.delete, [90, 91])])
def test_released_courses_follow_the_course_deletion_setting(setting, deleted):
    classes = [klass("C-3", provisioning_override="disabled")]
    moodle = [course(90, "C-2", shortname="a"), course(91, "C-3", shortname="b")]
    plan = plan_course_changes(classes, ["C-3"], moodle, CATEGORIES, {"C-2": 90, "C-3": 91}, integration(setting),
                               enrolled={90: [12], 91: []})
    assert [d["id"] for d in plan.deletes] == deleted
    kept = {record: reason for record, (action, reason) in by_record(plan.outcomes).items() if action == "kept"}
    assert set(kept) == {"C-2", "C-3"} - {d["class_external_id"] for d in plan.deletes}
    if setting is CourseDeletion.delete_only_empty:
        assert "users are still enrolled" in kept["C-2"] and "no longer in the MIS" in kept["C-2"]
    if setting is CourseDeletion.dont_delete:
        assert "no longer provisioned (the class's own setting is 'disabled'" in kept["C-3"]
    assert sorted(link for link, _ in plan.links) == sorted(kept) == sorted(plan.released)


MIS_STUDENT, MIS_TEACHER, BY_HAND = 11, 12, 99


@pytest.mark.parametrize("by_hand", [False, True], ids=["only_mis_accounts", "someone_enrolled_by_hand"])
@pytest.mark.parametrize("released_as", ["left_the_mis", "no_longer_provisioned"])
@pytest.mark.parametrize("setting", list(CourseDeletion))
@pytest.mark.parametrize("delete_enrolments", [False, True], ids=["enrolments_kept", "enrolments_deleted"])
def test_a_released_course_and_its_enrolments_under_each_deletion_setting(delete_enrolments, setting, released_as,
                                                                          by_hand):
    """The class plan, then the enrolment plan on what the class plan keeps (a deleted course is not read)."""
    settings = integration(deletion={"courses": setting, "enrolments": delete_enrolments})
    classes = [klass("C-3", provisioning_override="disabled")] if released_as == "no_longer_provisioned" else []
    members = [MIS_STUDENT, MIS_TEACHER] + ([BY_HAND] if by_hand else [])
    courses = plan_course_changes(classes, [c["external_id"] for c in classes], [course(91, "C-3")], CATEGORIES,
                                  {"C-3": 91}, settings, enrolled={91: members},
                                  mis_accounts={MIS_STUDENT, MIS_TEACHER, 13})
    empty_once_ours_go = delete_enrolments and not by_hand
    deleted = setting is CourseDeletion.delete or (setting is CourseDeletion.delete_only_empty and empty_once_ours_go)
    assert [d["id"] for d in courses.deletes] == ([91] if deleted else [])
    why = "no longer in the MIS" if released_as == "left_the_mis" else "no longer provisioned"
    if deleted:
        assert why in courses.deletes[0]["reason"] and courses.released == {} and courses.links == []
        if setting is CourseDeletion.delete_only_empty:
            assert "only accounts the MIS provisions, whose memberships ended, were enrolled (2)" in \
                courses.deletes[0]["reason"]
    else:
        action, reason = by_record(courses.outcomes)["C-3"]
        assert action == "kept" and why in reason and courses.links == [("C-3", 91)]
        assert courses.released == {"C-3": {"id": 91, "reason": courses.released["C-3"]["reason"]}}
        assert ("the enrolments of the MIS's accounts in it are taken back" in reason) is delete_enrolments
        if setting is CourseDeletion.delete_only_empty and delete_enrolments:
            assert "1 accounts the MIS does not provision (enrolled by hand) are still enrolled" in reason

    read = {c["id"]: {user: [STUDENT] for user in members} for c in courses.released.values()}
    enrolments = plan_enrolments([member("S-1", "C-3")] if classes else [], {}, {"S-1": MIS_STUDENT,
                                 "T-1": MIS_TEACHER, "S-9": 13}, read, ROLES, delete_enrolments=delete_enrolments,
                                 no_account={}, released={k: (v["id"], v["reason"]) for k, v in
                                                          courses.released.items()})
    taken_back = sorted((u["record"], u["userid"]) for u in enrolments.unenrols)
    assert taken_back == ([("S-1 in C-3", MIS_STUDENT), ("T-1 in C-3", MIS_TEACHER)]
                          if delete_enrolments and not deleted else [])
    assert all(why in u["reason"] and "Moodle course #91 is kept" in u["reason"] for u in enrolments.unenrols)
    assert enrolments.managed == len(taken_back) and enrolments.outcomes == [] and enrolments.enrols == []


def test_a_truly_empty_released_course_is_deleted_whatever_the_enrolment_setting():
    for delete_enrolments in (False, True):
        settings = integration(deletion={"courses": "delete_only_empty", "enrolments": delete_enrolments})
        plan = plan_course_changes([], [], [course(91, "C-3")], CATEGORIES, {"C-3": 91}, settings, enrolled={91: []},
                                   mis_accounts={MIS_STUDENT})
        assert [d["reason"] for d in plan.deletes] == ["the class is no longer in the MIS; deletion of courses: "
                                                       "delete_only_empty"]


def test_a_course_moved_hidden_reformatted_or_redated_in_moodle_keeps_it_and_names_follow_the_mis():
    moved = course(90, "C-1", categoryid=8, visible=1, format="topics", startdate=1_800_000_000, enddate=0)
    plan = plan_course_changes([klass("C-1", name="Grade 8A Maths")], ["C-1"], [moved], CATEGORIES, {"C-1": 90},
                               integration(), enrolled={})
    assert plan.updates == [{"class_external_id": "C-1", "id": 90, "action": "updated", "changed": ["fullname"],
                             "fullname": "Grade 8A Maths 2027"}]
    unchanged = plan_course_changes([klass("C-1")], ["C-1"], [moved], CATEGORIES, {"C-1": 90}, integration(),
                                    enrolled={})
    assert by_record(unchanged.outcomes) == {"C-1": ("unchanged", "")} and unchanged.updates == []


def test_new_courses_get_format_visibility_category_and_the_year_as_dates():
    plan = plan_course_changes([klass("C-1"), klass("R-1", group_type="Registration")], ["C-1", "R-1"], [],
                               CATEGORIES, {}, integration(timezone="UTC", academic_year_start="01-15"), enrolled={})
    [entry] = plan.creates
    assert (entry["idnumber"], entry["categoryid"], entry["format"], entry["visible"]) == ("C-1", 7, "weeks", 0)
    assert (entry["fullname"], entry["shortname"]) == course_names(klass("C-1"))
    assert entry["startdate"] == 1799971200 and entry["courseformatoptions"] == [{"name": "automaticenddate",
                                                                                  "value": 0}]
    assert by_record(plan.outcomes)["R-1"] == ("skipped", "not provisioned: group type 'Registration' is always "
                                                          "disabled")


def test_an_existing_course_with_the_id_number_is_linked_and_a_taken_short_name_is_a_conflict():
    adopted = plan_course_changes([klass("C-1")], ["C-1"], [course(95, "C-1")], CATEGORIES, {}, integration(),
                                  enrolled={})
    assert adopted.links == [("C-1", 95)] and adopted.creates == []
    clash = plan_course_changes([klass("C-1")], ["C-1"], [course(96, "", shortname="8A-MATH 2027")], CATEGORIES,
                                {}, integration(), enrolled={})
    assert by_record(clash.outcomes)["C-1"][0] == "conflict" and clash.creates == []
    missing = plan_course_changes([klass("C-1")], ["C-1"], [], [], {}, integration(), enrolled={})
    assert "no course category with ID number 'SUBJ'" in by_record(missing.outcomes)["C-1"][1]


def test_a_course_whose_id_number_differs_only_in_case_or_spaces_is_a_conflict_never_a_second_course():
    for variant in ("c-1", " C-1"):
        plan = plan_course_changes([klass("C-1")], ["C-1"], [course(97, variant, shortname="other")], CATEGORIES,
                                   {}, integration(), enrolled={})
        action, reason = by_record(plan.outcomes)["C-1"]
        assert plan.creates == [] and plan.links == [] and action == "conflict"
        assert f"Moodle course #97 has ID number '{variant}'" in reason
    kept = plan_course_changes([], ["c-1"], [course(98, "C-1")], CATEGORIES, {"C-1": 98},
                               integration(CourseDeletion.delete), enrolled={})
    assert kept.deletes == []


def test_an_unknown_group_type_is_skipped_for_the_data_engineer():
    plan = plan_course_changes([klass("C-1", group_type="Elective")], ["C-1"], [], CATEGORIES, {}, integration(),
                               enrolled={})
    outcome = plan.outcomes[0]
    assert (outcome.action, outcome.owner) == ("skipped", "the data engineer who maintains the school integration "
                                                          "files")


def test_the_course_guard_weighs_deletions_against_linked_courses():
    moodle = [course(100 + n, f"C-{n}", shortname=str(n)) for n in range(10)]
    plan = plan_course_changes([], [], moodle, CATEGORIES, {f"C-{n}": 100 + n for n in range(10)},
                               integration(CourseDeletion.delete), enrolled={})
    assert "delete 10 of 10 linked Moodle courses" in check_course_guard(plan, 0.2, 10)


# -- enrolments


def member(person_id: str, class_id: str, role: str = "student") -> dict:
    return {"person_external_id": person_id, "class_external_id": class_id, "role": role}


@pytest.mark.parametrize("delete_enrolments", [False, True])
def test_ended_memberships_are_unenrolled_only_when_allowed(delete_enrolments):
    enrolled = {90: {11: [STUDENT], 12: [STUDENT], 13: [TEACHER], 99: [STUDENT]}}
    plan = plan_enrolments([member("S-1", "C-1"), member("T-1", "C-1", "teacher"), member("S-4", "C-1")],
                           {"C-1": 90}, {"S-1": 11, "S-2": 12, "T-1": 13, "S-4": 14}, enrolled, ROLES,
                           delete_enrolments=delete_enrolments, no_account={})
    assert [(e["userid"], e["roleid"], e["action"]) for e in plan.enrols] == [(14, STUDENT, "enrolled")]
    outcomes = by_record(plan.outcomes)
    assert outcomes["S-1 in C-1"] == outcomes["T-1 in C-1"] == ("unchanged", "")
    if delete_enrolments:
        assert [(u["userid"], u["courseid"]) for u in plan.unenrols] == [(12, 90)]
    else:
        assert plan.unenrols == []
        assert outcomes["S-2 in C-1"] == ("kept", "the membership ended in the MIS; left enrolled, because deletion "
                                                  "of enrolments is not allowed")
    assert plan.managed == 3  # user 99 is no account of the MIS: never touched


def test_a_changed_role_is_added_and_the_old_one_taken_back_only_when_allowed():
    enrolled = {90: {11: [STUDENT]}}
    for allowed in (False, True):
        plan = plan_enrolments([member("S-1", "C-1", "teacher")], {"C-1": 90}, {"S-1": 11}, enrolled, ROLES,
                               delete_enrolments=allowed, no_account={})
        assert [(e["roleid"], e["action"]) for e in plan.enrols] == [(TEACHER, "role_added")]
        assert [u["roleid"] for u in plan.unassigns] == ([STUDENT] if allowed else [])


def test_new_users_and_courses_of_a_preview_and_people_without_account():
    plan = plan_enrolments([member("S-1", "C-1"), member("S-2", "C-1"), member("S-3", "C-9")],
                           {"C-1": new_id("C-1")}, {"S-1": new_id("S-1")}, {}, ROLES, delete_enrolments=True,
                           no_account={"S-2": "invalid in the MIS"})
    assert [(e["userid"], e["courseid"]) for e in plan.enrols] == [("new:S-1", "new:C-1")]
    assert by_record(plan.outcomes) == {"S-2 in C-1": ("skipped", "no Moodle account: invalid in the MIS")}


def test_the_enrolment_guard_weighs_unenrolments_against_managed_enrolments():
    enrolled = {90: {n: [STUDENT] for n in range(10)}}
    plan = plan_enrolments([], {"C-1": 90}, {f"S-{n}": n for n in range(10)}, enrolled, ROLES,
                           delete_enrolments=True, no_account={})
    assert "unenrol 10 of 10 enrolments" in check_enrolment_guard(plan, 0.2, 10)


def test_the_enrolment_guard_counts_the_enrolments_taken_back_in_released_courses():
    enrolled = {90: {n: [STUDENT] for n in range(8)}, 91: {n: [STUDENT] for n in range(8, 12)}}
    members = [member(f"S-{n}", "C-1") for n in range(8)]
    plan = plan_enrolments(members, {"C-1": 90}, {f"S-{n}": n for n in range(12)}, enrolled, ROLES,
                           delete_enrolments=True, no_account={}, released={"C-2": (91, "the class left")})
    assert "unenrol 4 of 12 enrolments" in check_enrolment_guard(plan, 0.2, 10)

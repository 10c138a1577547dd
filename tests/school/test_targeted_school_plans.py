"""A targeted run's school plans (pure): the listed people's records only, nobody else taken for gone, no course
released; and its extract keeps the listed people, their memberships and their classes."""

from __future__ import annotations

import pandas as pd
from test_school_plans import CATEGORIES, ROLES, STUDENT, course, integration, klass, member, mirrored, person

from school.config import CourseDeletion
from school.course_plan import plan_course_changes
from school.enrolment_plan import plan_enrolments
from school.mis_extract import listed_only
from school.user_plan import plan_user_changes

LISTED = frozenset({"s-2"})  # as targeted_records.matching gives "S-2"


def test_only_a_listed_person_gone_from_the_mis_is_deleted():
    links = {"S-1": 11, "S-2": 12}
    moodle = [mirrored(11, "S-1"), mirrored(12, "S-2")]
    whole = plan_user_changes([], [], moodle, links, delete_users=True, auth="manual")
    targeted = plan_user_changes([], [], moodle, links, delete_users=True, auth="manual", listed=LISTED)
    assert [d["external_id"] for d in whole.deletes] == ["S-1", "S-2"]
    assert [d["external_id"] for d in targeted.deletes] == ["S-2"]


def test_a_targeted_run_releases_no_course_of_a_class_it_did_not_read():
    moodle = [course(90, "C-1", shortname="a"), course(91, "C-2", shortname="b")]
    args = ([klass("C-1")], ["C-1"], moodle, CATEGORIES, {"C-1": 90, "C-2": 91},
            integration(CourseDeletion.delete), {91: []})
    assert [d["id"] for d in plan_course_changes(*args).deletes] == [91]
    targeted = plan_course_changes(*args, targeted=True)
    assert targeted.deletes == [] and targeted.released == {}
    assert [link for link, _ in targeted.links] == ["C-1"]


def test_a_targeted_run_takes_back_the_listed_peoples_ended_enrolments_only():
    enrolled = {90: {11: [STUDENT], 12: [STUDENT]}}
    users = {"S-1": 11, "S-2": 12}
    whole = plan_enrolments([], {"C-1": 90}, users, enrolled, ROLES, delete_enrolments=True, no_account={})
    targeted = plan_enrolments([], {"C-1": 90}, users, enrolled, ROLES, delete_enrolments=True, no_account={},
                               listed=LISTED)
    assert [u["record"] for u in whole.unenrols] == ["S-1 in C-1", "S-2 in C-1"]
    assert [u["record"] for u in targeted.unenrols] == ["S-2 in C-1"] and targeted.managed == 1
    assert plan_enrolments([member("S-2", "C-1")], {"C-1": 90}, users, enrolled, ROLES, delete_enrolments=True,
                           no_account={}, listed=LISTED).unenrols == []


def test_the_extract_keeps_the_listed_people_their_memberships_and_their_classes():
    frames = {"people": pd.DataFrame([person("S-1"), person("S-2"), person("T-1")]),
              "classes": pd.DataFrame([klass("C-1"), klass("C-2"), klass("C-3")]),
              "memberships": pd.DataFrame([member("S-1", "C-1"), member("S-2", "C-2"), member("T-1", "C-2"),
                                           member("S-2", "C-3")])}
    kept = listed_only(frames, ("s-2 ",))
    assert list(kept["people"]["external_id"]) == ["S-2"]
    assert list(kept["classes"]["external_id"]) == ["C-2", "C-3"]
    assert kept["memberships"][["person_external_id", "class_external_id"]].values.tolist() == [["S-2", "C-2"],
                                                                                                ["S-2", "C-3"]]

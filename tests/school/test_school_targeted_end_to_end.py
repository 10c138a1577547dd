"""A targeted run of the demo school ("sync now" for a few people, trigger parameter ``sync_only``), run for real
with dag.test() against the Moodle stand-in: only the listed person's account and enrolments are written, while
the MIS holds changes to others that a whole night would write, deletions allowed."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from test_school_end_to_end import course_by_idnumber, outcomes, roles_in, school_run, users_with_idnumber

__all__ = ["school_run"]  # the fixture, run here with deletions allowed

ALLOW_DELETIONS = {"deletion": {"users": True, "enrolments": True, "courses": "delete"}}
TAKEN_BACK = ("deleted", "suspended", "unenrolled", "role_removed")


def classes_of(engine, person: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT class_external_id FROM school_membership WHERE "
                                            "person_external_id = :person ORDER BY 1"), {"person": person}).scalars())


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)  # the run's logic is the same on either database
def test_a_targeted_run_writes_the_listed_person_only_and_takes_nobody_else_for_gone(school_run):
    moodle, engine = school_run.moodle, school_run.engine
    first = school_run(ALLOW_DELETIONS)
    assert first["state"] == "success" and first["targeted_records"] == []
    new_class = sorted(set(outcomes(first, "created", "classes")) - set(classes_of(engine, "S-2001")))[0]
    [ended] = classes_of(engine, "S-2004")[:1]
    with engine.begin() as connection:  # the MIS changes four people; support is asked to push S-2001's now
        connection.execute(text("UPDATE school_person SET last_name = 'Renamed' WHERE external_id IN "
                                "('S-2001', 'S-2002')"))
        connection.execute(text("INSERT INTO school_membership VALUES ('S-2001', :klass, 'student')"),
                           {"klass": new_class})
        connection.execute(text("DELETE FROM school_membership WHERE person_external_id = 'S-2003'"))
        connection.execute(text("DELETE FROM school_person WHERE external_id = 'S-2003'"))
        connection.execute(text("DELETE FROM school_membership WHERE person_external_id = 'S-2004' AND "
                                "class_external_id = :klass"), {"klass": ended})

    targeted = school_run(ALLOW_DELETIONS, sync_only=["s-2001", "S-9999"])
    assert targeted["state"] == "success" and targeted["targeted_records"] == ["s-2001", "S-9999"]
    assert targeted["moodle_writes"] == 2  # S-2001's account, and S-2001's enrolment in the new class
    assert outcomes(targeted, "updated", "people") == {"S-2001": "changed: lastname"}
    assert outcomes(targeted, "enrolled", "enrolments") == {f"S-2001 in {new_class}": "as student"}
    assert not [o for o in targeted["outcomes"] if o["action"] in TAKEN_BACK]
    [unknown] = [o for o in targeted["outcomes"] if o["record"] == "S-9999"]
    assert unknown["action"] == "warning" and unknown["owner"] == "school MIS administrator"
    assert "the MIS has no record with this key" in unknown["reason"]
    assert users_with_idnumber(moodle, "S-2001")[0]["lastname"] == "Renamed"
    assert users_with_idnumber(moodle, "S-2002")[0]["lastname"] != "Renamed"
    assert not users_with_idnumber(moodle, "S-2003")[0].get("suspended")  # gone from the MIS, still in Moodle
    s2004 = users_with_idnumber(moodle, "S-2004")[0]
    assert roles_in(moodle, course_by_idnumber(moodle, ended), s2004) == {"student"}

    again = school_run(ALLOW_DELETIONS, sync_only=["S-2001"])
    assert again["state"] == "success" and again["moodle_writes"] == 0  # nothing written twice

    night = school_run(ALLOW_DELETIONS)  # the next whole night writes what the targeted run left alone
    assert night["state"] == "success" and night["targeted_records"] == []
    assert outcomes(night, "updated", "people") == {"S-2002": "changed: lastname"}
    assert set(outcomes(night, "deleted", "people")) == {"S-2003"}
    assert f"S-2004 in {ended}" in outcomes(night, "unenrolled", "enrolments")


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)
def test_a_malformed_key_stops_the_run_before_anything_is_read_naming_the_value(school_run):
    failed = school_run(sync_only=["S-2001", "S 2002?"])
    assert failed["state"] == "failed" and failed["moodle_writes"] == 0
    [why] = [failure for failure in failed["failures"] if failure["task"] == "extract_school"]
    assert "'2002?' is not a record key" in why["detail"]
    assert failed["targeted_records"] == ["S-2001", "S 2002?"]

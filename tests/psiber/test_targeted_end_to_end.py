"""A targeted run of the PSIber demo integration ("HR fixed EE00013's e-mail, can you push it now?", trigger
parameter ``sync_only``), run for real with dag.test() against the Moodle stand-in: only the listed employee is
written, while PSIber holds changes to others that a whole night would write."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from test_end_to_end import by_number, demo_run, moodle_user

from moodle_provider.functions import is_write

__all__ = ["demo_run"]

WHOLE_RUNS_ONLY = ("extract_moodle_courses", "discover_custom_fields", "find_changed_learners",
                   "plan_completion_reads", "plan_result_changes", "refresh_ess_offers")


def writes_since(moodle, calls: int) -> list[str]:
    return [name for name, _ in moodle.calls[calls:] if is_write(name)]


def watermarks(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT * FROM sync_watermark ORDER BY 1"))]


@pytest.mark.parametrize("psiber", ["sqlite"], indirect=True)  # the run's logic is the same on either database
def test_a_targeted_run_writes_the_listed_employee_only_and_suspends_nobody_else(demo_run):
    moodle, engine = demo_run.moodle, demo_run.engine
    first = demo_run()
    assert first["state"] == "success" and first["targeted_records"] == []
    assert "EE00013" in by_number(first, "invalid")  # its e-mail is malformed
    renamed, terminated = sorted(by_number(first, "created"))[:2]
    with engine.begin() as connection:  # HR fixes EE00013, and changes two others the night will sync
        connection.execute(text("UPDATE employee SET email = 'ee00013.fixed@example.com' "
                                "WHERE employee_number = 'EE00013'"))
        connection.execute(text("UPDATE employee SET surname = 'Renamed' WHERE employee_number = :number"),
                           {"number": renamed})
        connection.execute(text("UPDATE employee SET employment_status = 'Terminated' "
                                "WHERE employee_number = :number"), {"number": terminated})
    read_marks, calls = watermarks(engine), len(moodle.calls)

    targeted = demo_run(sync_only=["ee00013", "EE99999"])
    assert targeted["state"] == "success" and targeted["targeted_records"] == ["ee00013", "EE99999"]
    assert writes_since(moodle, calls) == ["core_user_create_users"]
    assert set(by_number(targeted, "created")) == {"EE00013"}
    assert moodle_user(moodle, "EE00013")["email"] == "ee00013.fixed@example.com"
    assert targeted["counts"]["users"]["extracted"] == 1
    assert not by_number(targeted, "suspended") and not by_number(targeted, "updated")
    assert moodle_user(moodle, renamed)["lastname"] != "Renamed" and not moodle_user(moodle, terminated)["suspended"]
    unknown = by_number(targeted, "warning")["EE99999"]
    assert "PSIber has no record with this key" in unknown
    assert [o["owner"] for o in targeted["outcomes"] if o["record"] == "EE99999"] == ["PSIber HR"]
    states = {task["task_id"]: task["state"] for task in targeted["tasks"]}
    assert {states[task] for task in WHOLE_RUNS_ONLY} == {"skipped"}  # courses, results and ESS wait
    assert watermarks(engine) == read_marks  # no result read as if a whole night had run

    calls = len(moodle.calls)
    again = demo_run(sync_only=["EE00013"])
    assert again["state"] == "success" and writes_since(moodle, calls) == []  # never created twice
    assert by_number(again, "unchanged") == {"EE00013": ""}

    night = demo_run(sync_only=[])  # the next whole night writes what the targeted run left alone (dag.test()
    # keeps a run's conf as the DAG's params in this process: the empty list is given)
    assert night["state"] == "success" and night["targeted_records"] == []
    assert by_number(night, "updated") == {renamed: "changed: lastname"}
    assert set(by_number(night, "suspended")) == {terminated}

"""The results plan made and loaded a group of courses at a time: the same plan as one whole read, the same guard,
one transaction."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import create_engine, text

from factories import integration
from psiber import course_sync, result_sync
from psiber.demo_company import seed_demo_company
from psiber.psiber_db import select_watermark
from sync_common.invalid_records import TooManyInvalidRecordsError
from sync_common.run_files import read_json, write_json

NOW = 1_796_032_800  # 2026-11-30 10:00 UTC
PASS_MARK = {"custom_field_matches": [{"moodle_field": "passrate", "psiber_element": "min_pass_rate"}]}
SETTINGS = integration(safety={"max_invalid_share": 0.1}, courses=PASS_MARK)
USERS = range(100, 106)  # EE00001 … EE00006
GROUP = 12  # rows: a course has 6 or 12 here, so each group holds one course


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=30)
    return engine


def grade(course_id: int, user: int, raw: float | None = 80.0) -> dict:
    return {"courseid": course_id, "userid": user, "graderaw": raw, "grademin": 0.0, "grademax": 100.0,
            "gradedategraded": NOW - 600 if raw is not None else None}


def completion(course_id: int, user: int, completed: bool = True, when: int = NOW - 300) -> dict:
    return {"courseid": course_id, "userid": user, "completed": completed, "timecompleted": when if completed else None}


def company(engine, run_dir) -> None:
    """Courses 5–8 in PSIber (8 without a grade file), 9 only in Moodle; a grade out of range (6, EE00002), a
    completion in the future (7, EE00003), a grade below the pass mark (5, EE00004), a course Moodle refused."""
    moodle = [{"id": 1, "shortname": "site", "format": "site"}] + [
        {"id": n, "shortname": f"C-{n}", "idnumber": f"C-{n}", "fullname": f"Course {n}", "categoryid": 1,
         "visible": 1, "startdate": NOW - 86_400 * 30, "enddate": 0, "enablecompletion": 1, "format": "topics",
         "customfields": [{"shortname": "passrate", "value": "60"}]} for n in (5, 6, 7, 8)]
    write_json(run_dir / "moodle_courses.json", moodle)
    write_json(run_dir / "moodle_categories.json", [{"id": 1, "name": "Driver Training"}])
    course_sync.plan_courses(SETTINGS, engine, run_dir)
    course_sync.load_courses(SETTINGS, engine, run_dir)
    write_json(run_dir / result_sync.LEARNERS, {
        "started": NOW, "watermark": 0, "stored_watermark": 0, "full": True, "active": list(USERS),
        "course_ids": [5, 6, 7, 8, 9], "links": {str(user): [n, f"EE0000{n}"] for n, user in enumerate(USERS, 1)}})
    (run_dir / "grades").mkdir()
    write_json(run_dir / "grades" / "courses-5.json", {"outcomes": [], "grades": [
        grade(course_id, user, 150.0 if (course_id, user) == (6, 101) else 40.0 if (course_id, user) == (5, 103)
              else 80.0 if user != 105 else None)
        for course_id in (5, 6) for user in USERS]})
    write_json(run_dir / "grades" / "courses-7.json", {
        "outcomes": [{"record": "Moodle course #10", "action": "warning", "reason": "grades could not be read"}],
        "grades": [grade(course_id, user) for course_id in (7, 9) for user in USERS]})
    (run_dir / "completions").mkdir()
    for first in (100, 103):
        write_json(run_dir / "completions" / f"users-{first}.json", {"outcomes": [], "completions": [
            completion(course_id, user, completed=user != 105, when=NOW + 86_400 if (course_id, user) == (7, 102)
                       else NOW - 300)
            for user in range(first, first + 3) for course_id in (5, 6, 7, 8, 9)]})


def planned(run_dir) -> dict:
    plan = read_json(run_dir / result_sync.PLAN)
    parts = list(result_sync.plan_parts(run_dir))
    return {"attempts": [a for part in parts for a in part["attempts"]],
            "completions": [c for part in parts for c in part["completions"]],
            "outcomes": plan["outcomes"], "in_progress": plan["in_progress"], "reads_complete": plan["reads_complete"],
            "parts": len(parts)}


def test_a_plan_made_a_group_of_courses_at_a_time_is_the_plan_of_one_group(engine, tmp_path, monkeypatch):
    whole, grouped = tmp_path / "whole", tmp_path / "grouped"
    whole.mkdir()
    company(engine, whole)
    shutil.copytree(whole, grouped)
    monkeypatch.setattr(result_sync, "ROWS_PER_GROUP", 1_000_000)
    assert result_sync.plan_result_changes(SETTINGS, engine, whole) == {"attempts": 18, "in_progress": 4,
                                                                        "invalid": 2}
    held = []
    checked_reads = result_sync._checked_reads

    def counted(grades, completions, *args):
        held.append(len(grades) + len(completions))
        return checked_reads(grades, completions, *args)

    monkeypatch.setattr(result_sync, "_checked_reads", counted)
    monkeypatch.setattr(result_sync, "ROWS_PER_GROUP", GROUP)
    assert result_sync.plan_result_changes(SETTINGS, engine, grouped) == {"attempts": 18, "in_progress": 4,
                                                                          "invalid": 2}
    assert len(held) == 5 and max(held) <= GROUP and sum(held) == 24 + 30  # 24 grades, 30 completions
    one, several = planned(whole), planned(grouped)
    assert (one["parts"], several["parts"]) == (1, 4)  # course 9 is not in PSIber: no attempt, no part
    assert {key: value for key, value in several.items() if key != "parts"} == {
        key: value for key, value in one.items() if key != "parts"}
    assert [(o["record"], o["action"], o["reason"]) for o in several["outcomes"] if o["action"] != "skipped"] == [
        ("Moodle course #10", "warning", "grades could not be read"),
        ("EE00002 / C-6", "invalid", "grade 150 is outside its range 0–100"),
        ("EE00003 / C-7", "invalid", "completion time is in the future")]
    assert [(a["record"], a["result"]) for a in several["attempts"] if a["record"].startswith("EE00004")] == [
        ("EE00004 / C-5", "Not Yet Competent"), ("EE00004 / C-6", "Competent"), ("EE00004 / C-7", "Competent"),
        ("EE00004 / C-8", "Competent")]  # C-8: completions alone, no grade file


def test_a_group_is_at_most_its_row_budget_unless_one_course_is_larger():
    assert result_sync.course_groups({5: 6, 6: 6, 7: 2, 8: 30, 9: 1}, 8) == [[5], [6, 7], [8], [9]]
    assert result_sync.course_groups({}, 8) == []


def test_the_invalid_share_guard_weighs_every_group_together(engine, tmp_path, monkeypatch):
    company(engine, tmp_path)
    monkeypatch.setattr(result_sync, "ROWS_PER_GROUP", GROUP)
    # 1 bad grade of the 24 read: 4% overall, though 1 in 6 of its own group's grades.
    result_sync.plan_result_changes(SETTINGS, engine, tmp_path)
    strict = integration(safety={"max_invalid_share": 0.04}, courses=PASS_MARK)
    with pytest.raises(TooManyInvalidRecordsError, match=r"1 of 24 course grades \(4%\)"):
        result_sync.plan_result_changes(strict, engine, tmp_path)
    assert len(read_json(tmp_path / result_sync.PLAN)["outcomes"]) > 2  # the plan lists them before the run stops


def attempts_held(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM course_attempt")).scalar_one()


def test_a_plan_in_parts_is_loaded_in_one_transaction_and_once(engine, tmp_path, monkeypatch):
    company(engine, tmp_path)
    monkeypatch.setattr(result_sync, "ROWS_PER_GROUP", GROUP)
    result_sync.plan_result_changes(SETTINGS, engine, tmp_path)
    parts = list(result_sync.plan_parts(tmp_path))

    def broken_last_part(run_dir):
        yield from parts[:-1]
        yield {"attempts": [{"attempt_key": "broken"}], "completions": []}

    monkeypatch.setattr(result_sync, "plan_parts", broken_last_part)
    with pytest.raises(KeyError):
        result_sync.load_results(SETTINGS, engine, tmp_path)
    assert attempts_held(engine) == 0 and select_watermark(engine, SETTINGS.key, "results") == 0
    monkeypatch.undo()
    first = result_sync.load_results(SETTINGS, engine, tmp_path)
    assert first == {"new_attempts": 18, "already_recorded": 0, "completions_changed": 18, "in_progress": 4}
    assert select_watermark(engine, SETTINGS.key, "results") == 0  # rows were rejected: asked about again
    assert len(read_json(tmp_path / result_sync.LOADED)["outcomes"]) == 18
    again = result_sync.load_results(SETTINGS, engine, tmp_path)
    assert again == {"new_attempts": 0, "already_recorded": 18, "completions_changed": 0, "in_progress": 4}
    assert attempts_held(engine) == 18
    assert read_json(tmp_path / result_sync.LOADED)["outcomes"] == []

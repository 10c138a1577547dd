"""Course status from the files the results flow writes, merged night after night."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import create_engine

from psiber.course_status import RunReads, merge_learners, read_run, rows_to_merge
from sync_common import report_store
from sync_common.report_store import CourseReads, learner_status
from sync_common.run_files import write_frame, write_json

ZONE = ZoneInfo("Africa/Johannesburg")


def merged(existing: dict, night: RunReads, run_id: str) -> tuple[list[dict], list]:
    """``merge_learners``' rows to write, made all at once, and its pairs to delete."""
    upserts, removed = merge_learners(existing, night, run_id)
    return list(upserts), removed


def reads(**more) -> RunReads:
    base = RunReads(courses={7: ("DRV-101", "Defensive Driving"), 8: ("HS-101", "Fire Safety")},
                    learners={1: "EE001", 2: "EE002"}, names={1: "Ann Smith", 2: "Bo Dlamini"})
    for name, value in more.items():
        setattr(base, name, value)
    return base


def test_a_night_merges_grades_completions_and_verdicts_into_learner_rows():
    first, removed = merged({}, reads(
        grades={(7, 1): 82.5, (7, 2): None}, fully_read_courses={7, 8},
        completions={(7, 1): (True, date(2026, 11, 19)), (7, 2): (False, None)},
        results={(7, 1): ("Competent", 1, date(2026, 11, 19), 82.5)}), "run1")
    assert removed == []
    rows = {(r["moodle_course_id"], r["moodle_user_id"]): r for r in first}
    expected = {"course_code": "DRV-101", "employee_number": "EE001", "learner_name": "Ann Smith", "completed": 1,
                "completed_on": date(2026, 11, 19), "grade": 82.5, "result": "Competent", "passed": 1, "run_id": "run1"}
    assert {key: rows[(7, 1)][key] for key in expected} == expected
    assert learner_status(rows[(7, 1)]) == "passed" and learner_status(rows[(7, 2)]) == "in progress"


def test_what_a_night_did_not_read_is_kept_and_unchanged_rows_are_not_rewritten():
    kept = {(7, 1): {"moodle_course_id": 7, "moodle_user_id": 1, "course_code": "DRV-101",
                     "course_name": "Defensive Driving", "employee_number": "EE001", "learner_name": "Ann Smith",
                     "completed": 1, "completed_on": "2026-11-19", "grade": 82.5, "result": "Competent", "passed": 1,
                     "result_on": "2026-11-19", "run_id": "run1"}}
    # The next night: the grade report still lists the learner (same grade), no completion read (not active).
    upserts, removed = merged(kept, reads(grades={(7, 1): 82.5}, fully_read_courses={7, 8},
                                                  names={}), "run2")
    assert upserts == [] and removed == []
    upserts, _ = merged(kept, reads(grades={(7, 1): 90.0}, fully_read_courses={7, 8}), "run3")
    assert [(r["grade"], r["result"], r["completed"], r["run_id"]) for r in upserts] == [(90.0, "Competent", 1, "run3")]


def test_learners_leave_with_their_enrolment_their_link_or_their_course():
    row = {"course_code": "X", "course_name": "", "employee_number": "", "learner_name": "", "completed": 0}
    kept = {(7, 1): row, (7, 2): row, (9, 1): row, (8, 3): row}
    upserts, removed = merged(kept, reads(grades={(7, 2): None}, fully_read_courses={7}), "run2")
    # (7, 1): course 7 read in full without them; (9, 1): course 9 left Moodle; (8, 3): user 3 no longer linked
    assert sorted(removed) == [(7, 1), (8, 3), (9, 1)]
    assert [(r["moodle_course_id"], r["moodle_user_id"]) for r in upserts] == [(7, 2)]
    # A course whose grades could not all be read proves nothing about who left it.
    _, removed = merged({(7, 1): row}, reads(grades={}, fully_read_courses=set()), "run3")
    assert removed == []


def test_the_run_files_of_the_results_flow_are_read_as_they_are_written(tmp_path):
    write_json(tmp_path / "moodle_courses.json", [
        {"id": 1, "format": "site", "shortname": "site"},
        {"id": 7, "shortname": "DRV-101", "idnumber": "", "fullname": "Defensive Driving"},
        {"id": 8, "shortname": "HS", "idnumber": "HS-101", "fullname": "Fire Safety"}])
    write_json(tmp_path / "learners.json", {"links": {"11": [101, "EE001"], "12": [102, "EE002"]},
                                            "course_ids": [7, 8]})
    write_frame(tmp_path / "employees.parquet", pd.DataFrame(
        {"employee_id": [101, 102], "first_name": ["Ann", "Bo"], "surname": ["Smith", "Dlamini"]}))
    (tmp_path / "grades").mkdir()
    write_json(tmp_path / "grades" / "courses-7.json", {
        "grades": [{"courseid": 7, "userid": 11, "graderaw": 41.0, "grademin": 0, "grademax": 50}],
        "outcomes": [{"record": "Moodle course #8", "action": "warning"}]})
    (tmp_path / "completions").mkdir()
    write_json(tmp_path / "completions" / "users-11.json", {"completions": [
        {"courseid": 7, "userid": 11, "completed": True, "timecompleted": 1795125600}], "outcomes": []})
    write_json(tmp_path / "outcomes/results.plan.json", {"parts": ["part-00001.json"]})
    write_json(tmp_path / "results_plan/part-00001.json", {"completions": [], "attempts": [
        {"employee_id": 101, "course_code": "DRV-101", "result": "Competent", "grade": 82.0,
         "attempt_date": "2026-11-20"}]})
    write_json(tmp_path / "outcomes/results.load.json", {"counts": {}, "outcomes": []})
    found = read_run(tmp_path, ZONE, "Competent", grade_reads_complete=True)
    assert found.courses == {7: ("DRV-101", "Defensive Driving"), 8: ("HS-101", "Fire Safety")}
    assert found.learners == {11: "EE001", 12: "EE002"} and found.names == {11: "Ann Smith", 12: "Bo Dlamini"}
    assert found.grades == {(7, 11): 82.0}
    assert found.fully_read_courses == {7}  # course 8's grades could not be read
    assert found.completions == {(7, 11): (True, date(2026, 11, 20))}  # 1795125600 = 20 Nov 00:00 in Johannesburg
    assert found.results == {(7, 11): ("Competent", 1, date(2026, 11, 20), 82.0)}
    assert read_run(tmp_path, ZONE, "Competent", grade_reads_complete=False).fully_read_courses == set()
    # Both employees settled (their row, name included, as when their status was last written): only the learner
    # this run read is named.
    write_json(tmp_path / "users_scope.json", {"full": False, "settled": {"101": "ann@x.test", "102": "bo@x.test"}})
    assert read_run(tmp_path, ZONE, "Competent", grade_reads_complete=True).names == {11: "Ann Smith"}
    (tmp_path / "learners.json").unlink()
    assert read_run(tmp_path, ZONE, "Competent", grade_reads_complete=True) is None


def _stored(tmp_path, rows: dict):
    """A report store holding the learner rows ``rows`` (pair → row), as an earlier run saved them."""
    engine = create_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    report_store.create_report_schema(engine)
    summary = {"run_id": "run1", "started_at": "2026-11-20T01:00:00+00:00", "finished_at": "2026-11-20T01:05:00+00:00",
               "complete": True, "moodle_calls": 0, "counts": {}, "tasks": [], "outcomes": []}
    report_store.save_run_report(engine, "driver_training", "psiber_moodle_sync", summary, keep_days=30,
                                 learners=CourseReads(list(rows.values()), []))
    return engine


def _merged_from_store(engine, night: RunReads):
    """A night's merge over the rows it loads (``rows_to_merge``), and how many rows it loaded."""
    course_ids, user_ids = rows_to_merge(night, *report_store.stored_course_learner_keys(engine, "driver_training"))
    loaded = report_store.course_learners_of(engine, "driver_training", course_ids, user_ids)
    return merged(loaded, night, "run2"), len(loaded)


def test_a_quiet_night_loads_only_the_rows_of_what_it_read_and_merges_as_over_every_row(tmp_path):
    everyone = {user: f"EE{user:03}" for user in range(1, 21)}
    courses = {course: (f"C-{course}", f"Course {course}") for course in range(1, 11)}
    first, _ = merged({}, reads(courses=courses, learners=everyone, names={},
                                        grades={(c, u): 50.0 for c in courses for u in everyone}), "run1")
    engine = _stored(tmp_path, {(row["moodle_course_id"], row["moodle_user_id"]): row for row in first})
    stored = report_store.course_learners_of(engine, "driver_training", courses, everyone)
    assert len(stored) == 200
    quiet = reads(courses=courses, learners=everyone, names={}, grades={(3, 4): 80.0},
                  completions={(3, 4): (True, date(2026, 11, 19))})
    (upserts, removed), loaded = _merged_from_store(engine, quiet)
    assert loaded == 20  # course 3's learners, not all 200 rows
    assert (upserts, removed) == merged(stored, quiet, "run2")
    assert [(row["moodle_course_id"], row["moodle_user_id"], row["grade"]) for row in upserts] == [(3, 4, 80.0)]
    # what a night changes without reading it: a course gone or renamed, a user unlinked, renumbered or renamed
    changed = reads(courses={**{c: courses[c] for c in courses if c != 9}, 2: ("C-2", "Course two")},
                    learners={**{u: everyone[u] for u in everyone if u != 7}, 5: "EE105"}, names={6: "Di Six"},
                    grades={(3, 4): 80.0})
    (upserts, removed), loaded = _merged_from_store(engine, changed)
    assert (upserts, removed) == merged(stored, changed, "run2")
    assert loaded == 20 * 3 + 10 * 3 - 3 * 3  # courses 2, 3 and 9, users 5, 6 and 7
    assert set(removed) == {(9, u) for u in everyone} | {(c, 7) for c in courses}


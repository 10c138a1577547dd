"""The report tables round-trip on SQLite and PostgreSQL: a run's report, its filters, retention, course status."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event, inspect, text

from sync_common import report_store
from sync_common.report_store import CourseReads, OutcomeFilter, save_run_report
from sync_common.step_outputs import read_outcomes, step_file, write_outcomes

KEY = "driver_training"
DAG_ID = "psiber_moodle_driver_training"


def outcome(record, action, reason="", owner="", flow="users"):
    return {"record": record, "action": action, "reason": reason, "owner": owner, "flow": flow}


def summary(run_id="manual__2026-11-20T01:00:00+00:00", finished="2026-11-20T01:05:30+00:00", outcomes=None,
            **more):
    return {
        "run_id": run_id, "started_at": "2026-11-20T01:00:00+00:00", "finished_at": finished, "complete": False,
        "moodle_calls": 42,
        "counts": {"users": {"extracted": 3, "created": 1, "adopted": 1, "failed": 1},
                   "results": {"recorded": 0, "quarantined": 2}},
        "tasks": [{"task_id": "apply_user_changes", "map_index": -1, "state": "failed", "duration": 1.5},
                  {"task_id": "read_completions", "map_index": 0, "state": "success", "duration": 0.2},
                  {"task_id": "record_user_links", "map_index": -1, "state": "upstream_failed", "duration": None}],
        "outcomes": outcomes if outcomes is not None else [
            outcome("EE001", "created"),
            outcome("EE002", "updated", "changed: lastname, email"),
            outcome("EE_03", "failed", "Moodle refused it", "Moodle administrator"),
            outcome("DRV-101", "quarantined", "held back", "Training administrator", flow="results"),
        ],
        **more,
    }


def test_a_run_report_round_trips_with_every_action_and_task(psiber):
    engine, _ = psiber
    report_store.create_report_schema(engine)
    report_store.create_report_schema(engine)  # idempotent
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE sync_course_learner"))  # a table added by a later release
    report_store.create_report_schema(engine)
    assert inspect(engine).has_table("sync_course_learner")
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30)
    stored = report_store.run(engine, KEY, "manual__2026-11-20T01:00:00+00:00")
    assert stored["moodle_calls"] == 42 and stored["outcomes"] == 4 and stored["problems"] == 2
    assert not stored["complete"] and stored["dag_id"] == DAG_ID
    assert stored["counts"] == {"users": {"extracted": 3, "created": 1, "adopted": 1, "failed": 1},
                                "results": {"recorded": 0, "quarantined": 2}}
    assert [(t["task_id"], t["map_index"], t["state"]) for t in stored["tasks"]] == [
        ("apply_user_changes", -1, "failed"), ("read_completions", 0, "success"),
        ("record_user_links", -1, "upstream_failed")]
    assert stored["owners"] == ["Moodle administrator", "Training administrator"]
    everything, total = report_store.outcomes(engine, KEY, stored["run_id"], OutcomeFilter())
    assert total == 4
    assert [o["record"] for o in everything] == ["EE_03", "DRV-101", "EE001", "EE002"]  # problems first
    assert everything[3]["changed_fields"] == "lastname, email"


def test_report_tables_made_before_previews_get_the_preview_column_and_runs_say_whether_they_were_one(psiber):
    engine, _ = psiber
    report_store.create_report_schema(engine)
    with engine.begin() as connection:  # the run table as a release before previews made it
        connection.execute(text("DROP TABLE sync_report_run"))
        connection.execute(text("CREATE TABLE sync_report_run (integration_name VARCHAR(80) NOT NULL, run_id "
                                "VARCHAR(250) NOT NULL, dag_id VARCHAR(250) NOT NULL, started_at TIMESTAMP, "
                                "finished_at TIMESTAMP NOT NULL, complete INTEGER NOT NULL, moodle_calls INTEGER "
                                "NOT NULL, outcomes INTEGER NOT NULL, problems INTEGER NOT NULL, "
                                "PRIMARY KEY (integration_name, run_id))"))
        connection.execute(text("INSERT INTO sync_report_run VALUES ('k', 'old', 'd', NULL, '2026-11-01 01:00:00', "
                                "1, 0, 0, 0)"))
    report_store.create_report_schema(engine)
    assert report_store.run(engine, "k", "old")["preview"] == 0
    save_run_report(engine, KEY, DAG_ID, summary(preview=True), keep_days=30)
    save_run_report(engine, KEY, DAG_ID, summary(run_id="scheduled__2026-11-21"), keep_days=30)
    assert {run["run_id"]: run["preview"] for run in report_store.runs(engine, KEY)} == {
        "manual__2026-11-20T01:00:00+00:00": 1, "scheduled__2026-11-21": 0}


def test_outcomes_filter_by_flow_action_owner_and_record_text(psiber):
    engine, _ = psiber
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30)
    run_id = "manual__2026-11-20T01:00:00+00:00"

    def records(**chosen):
        return [o["record"] for o in report_store.outcomes(engine, KEY, run_id, OutcomeFilter(**chosen))[0]]

    assert records(flow="results") == ["DRV-101"]
    assert records(action="updated") == ["EE002"]
    assert records(owner="Moodle administrator") == ["EE_03"]
    assert records(search="ee00") == ["EE001", "EE002"]
    assert records(search="_") == ["EE_03"]  # a LIKE wildcard is searched for as itself
    page, total = report_store.outcomes(engine, KEY, run_id, OutcomeFilter(), limit=2, offset=2)
    assert total == 4 and [o["record"] for o in page] == ["EE001", "EE002"]


def test_summarising_a_run_again_replaces_its_report_and_old_reports_expire(psiber):
    engine, _ = psiber
    old = "scheduled__2026-01-01T00:00:00+00:00"
    save_run_report(engine, KEY, DAG_ID, summary(old, "2026-01-01T00:10:00+00:00"), keep_days=400)
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=400)
    save_run_report(engine, KEY, DAG_ID, summary(outcomes=[outcome("EE001", "unchanged")], complete=True),
                    keep_days=400)
    assert [run["run_id"] for run in report_store.runs(engine, KEY)] == ["manual__2026-11-20T01:00:00+00:00", old]
    again = report_store.run(engine, KEY, "manual__2026-11-20T01:00:00+00:00")
    assert again["outcomes"] == 1 and again["complete"]
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30)  # retention shortened: the January run goes
    assert [run["run_id"] for run in report_store.runs(engine, KEY)] == ["manual__2026-11-20T01:00:00+00:00"]
    assert report_store.run(engine, KEY, old) is None
    assert report_store.outcomes(engine, KEY, old, OutcomeFilter()) == ([], 0)


def test_course_learners_round_trip_and_count_per_course(psiber):
    engine, _ = psiber
    learner = {"moodle_course_id": 7, "course_code": "DRV-101", "course_name": "Defensive Driving",
               "completed": 0, "completed_on": None, "grade": None, "result": None, "passed": None,
               "result_on": None, "run_id": "r1"}
    rows = [
        {**learner, "moodle_user_id": 1, "employee_number": "EE001", "learner_name": "Ann Smith", "completed": 1,
         "completed_on": date(2026, 11, 19), "grade": 82.5, "result": "Competent", "passed": 1,
         "result_on": date(2026, 11, 19)},
        {**learner, "moodle_user_id": 2, "employee_number": "EE002", "learner_name": "Bo Dlamini", "grade": 40.0,
         "result": "Not Yet Competent", "passed": 0, "result_on": date(2026, 11, 19)},
        {**learner, "moodle_user_id": 3, "employee_number": "EE003", "learner_name": "Cy Naidoo"},
        {**learner, "moodle_user_id": 3, "moodle_course_id": 8, "course_code": "HS-101", "course_name": "Fire",
         "employee_number": "EE003", "learner_name": "Cy Naidoo"},
    ]
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30, learners=CourseReads(rows, []))
    status = {c["course_code"]: c for c in report_store.course_status(engine, KEY)}
    assert {k: int(status["DRV-101"][k]) for k in ("enrolled", "in_progress", "completed", "passed", "failed")} == \
        {"enrolled": 3, "in_progress": 1, "completed": 1, "passed": 1, "failed": 1}
    learners = report_store.course_learners(engine, KEY, 7)
    assert [(r["employee_number"], r["learner_name"], float(r["grade"]) if r["grade"] is not None else None)
            for r in learners] == [("EE001", "Ann Smith", 82.5), ("EE002", "Bo Dlamini", 40.0),
                                   ("EE003", "Cy Naidoo", None)]
    assert str(learners[0]["result_on"])[:10] == "2026-11-19"
    by_pair = report_store.course_learners_of(engine, KEY, [7, 8], [1, 2, 3])
    assert set(by_pair) == {(7, 1), (7, 2), (7, 3), (8, 3)}
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30, learners=CourseReads([], [(8, 3)]))
    assert set(report_store.course_learners_of(engine, KEY, [7, 8], [1, 2, 3])) == {(7, 1), (7, 2), (7, 3)}


def failure(task="check_moodle_site", error="Moodle unreachable", owner="Moodle administrator / IT (network)"):
    return {"task": task, "task_id": task, "map_index": -1, "error": error, "detail": "cannot connect",
            "owner": owner, "next_step": f"Clear {task} once the site answers again", "transient": True,
            "failed_at": "2026-11-20T02:00:40+00:00"}


def test_a_cleared_run_keeps_its_first_start_and_every_try_with_why_it_failed(psiber):
    engine, _ = psiber
    run_id = "scheduled__2026-11-20T02:00:00+00:00"
    failed = summary(run_id, "2026-11-20T02:01:00+00:00", outcomes=[], started_at="2026-11-20T02:00:00+00:00",
                     state="failed", try_number=0, failures=[failure()])
    save_run_report(engine, KEY, DAG_ID, failed, keep_days=400)
    cleared = summary(run_id, "2026-11-20T09:14:00+00:00", started_at="2026-11-20T09:12:00+00:00", complete=True,
                      state="success", try_number=1, failures=[])
    save_run_report(engine, KEY, DAG_ID, cleared, keep_days=400)
    save_run_report(engine, KEY, DAG_ID, cleared, keep_days=400)  # summarize_run itself cleared: same try again
    report = report_store.run(engine, KEY, run_id)
    assert str(report["started_at"]).startswith("2026-11-20 02:00:00") and report["state"] == "success"
    assert report["failures"] == [] and report["outcomes"] == 4
    assert [(t["try_number"], t["state"], str(t["started_at"])[:16]) for t in report["tries"]] == [
        (0, "failed", "2026-11-20 02:00"), (1, "success", "2026-11-20 09:12")]
    [why] = report["tries"][0]["failures"]
    assert (why["task"], why["error"], why["owner"], why["transient"]) == (
        "check_moodle_site", "Moodle unreachable", "Moodle administrator / IT (network)", 1)
    save_run_report(engine, KEY, DAG_ID, summary(finished="2027-06-01T00:00:00+00:00"), keep_days=30)
    assert report_store.run(engine, KEY, run_id) is None  # expired with every try
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM sync_report_try WHERE run_id = :run_id"),
                                  {"run_id": run_id}).scalar_one() == 0


def test_report_tables_made_before_tries_were_kept_get_them(psiber):
    engine, _ = psiber
    report_store.create_report_schema(engine)
    with engine.begin() as connection:  # the tables as a release before run histories made them
        connection.execute(text("DROP TABLE sync_report_try"))
        connection.execute(text("DROP TABLE sync_report_failure"))
    save_run_report(engine, KEY, DAG_ID, summary(failures=[failure()]), keep_days=30)
    assert [f["error"] for f in report_store.run(engine, KEY, summary()["run_id"])["failures"]] == [
        "Moodle unreachable"]


def test_the_owner_filter_matches_a_record_an_owner_shares_with_others(psiber):
    engine, _ = psiber
    save_run_report(engine, KEY, DAG_ID, summary(outcomes=[
        outcome("EE10", "conflict", "e-mail used by Moodle user #7", "Moodle administrator / PSIber HR"),
        outcome("EE11", "invalid", "surname missing", "PSIber HR"),
        outcome("EE12", "failed", "refused", "Moodle administrator"),
        outcome("EE13", "failed", "refused", "Moodle administrators' team"),
    ]), keep_days=30)
    run_id = summary()["run_id"]

    def records(owner):
        return [o["record"] for o in report_store.outcomes(engine, KEY, run_id, OutcomeFilter(owner=owner))[0]]

    assert report_store.owners(engine, KEY, run_id) == ["Moodle administrator", "Moodle administrators' team",
                                                         "PSIber HR"]
    assert records("Moodle administrator") == ["EE10", "EE12"]
    assert records("PSIber HR") == ["EE10", "EE11"]


def test_outcomes_are_read_in_chunks_in_the_reports_order(psiber):
    engine, _ = psiber
    save_run_report(engine, KEY, DAG_ID, summary(outcomes=[outcome(f"EE{n:05d}", "created") for n in range(25)] + [
        outcome("EE99999", "invalid", "surname missing", "PSIber HR")]), keep_days=30)
    chunks = list(report_store.outcome_chunks(engine, KEY, summary()["run_id"], OutcomeFilter(), 10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 6]
    assert [o["record"] for chunk in chunks for o in chunk] == ["EE99999", *(f"EE{n:05d}" for n in range(25))]


def test_a_records_history_holds_its_outcome_in_every_run_newest_first_and_no_other_records(psiber):
    engine, _ = psiber
    save_run_report(engine, KEY, DAG_ID, summary("run_1", "2026-11-20T01:05:00+00:00", outcomes=[
        outcome("EE001", "invalid", "surname is missing", "PSIber HR"), outcome("EE0010", "created")]), keep_days=400)
    save_run_report(engine, KEY, DAG_ID, summary("run_2", "2026-11-21T01:05:00+00:00", outcomes=[
        outcome("EE001", "created"), outcome("EE001 / DRV-101", "recorded", flow="results"),
        outcome("EE001_X", "created")]), keep_days=400)
    found = report_store.record_history(engine, KEY, " ee001 ")
    assert [(row["run_id"], row["record"], row["action"]) for row in found] == [
        ("run_2", "EE001", "created"), ("run_2", "EE001 / DRV-101", "recorded"), ("run_1", "EE001", "invalid")]
    assert found[2]["reason"] == "surname is missing" and found[2]["owner"] == "PSIber HR"
    assert report_store.record_history(engine, KEY, "") == []


def course(course_id, code, not_counted=""):
    return {"moodle_course_id": course_id, "course_code": code, "course_name": f"{code} course",
            "not_counted": not_counted}


def test_course_status_lists_every_course_read_those_not_counted_with_why_and_totals_of_the_counted(psiber):
    engine, _ = psiber
    learner = {"course_name": "x", "completed": 0, "completed_on": None, "grade": None, "result": None,
               "passed": None, "result_on": None, "run_id": "r1", "learner_name": "Ann Smith"}
    rows = [{**learner, "moodle_course_id": 7, "course_code": "DRV-101", "moodle_user_id": 1,
             "employee_number": "EE001", "completed": 1, "passed": 1},
            {**learner, "moodle_course_id": 7, "course_code": "DRV-101", "moodle_user_id": 2,
             "employee_number": "EE002"},
            {**learner, "moodle_course_id": 9, "course_code": "DRV-OLD", "moodle_user_id": 2,
             "employee_number": "EE002"}]
    courses = [course(7, "DRV-101"), course(8, "HS-101"), course(9, "DRV-OLD", "hidden in Moodle"),
               course(10, "ONB-1", "completion tracking is off in Moodle")]
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30, learners=CourseReads(rows, [], courses))
    status = report_store.course_status(engine, KEY)
    assert [(c["course_code"], int(c["enrolled"]), c["not_counted"]) for c in status] == [
        ("DRV-101", 2, ""), ("DRV-OLD", 1, "hidden in Moodle"), ("HS-101", 0, ""),
        ("ONB-1", 0, "completion tracking is off in Moodle")]
    assert report_store.course_totals(status) == {"enrolled": 2, "in_progress": 1, "completed": 1, "passed": 1,
                                                  "failed": 0, "courses": 2, "not_counted": 2}
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30, learners=CourseReads(courses=courses[:1]))
    assert [c["course_code"] for c in report_store.course_status(engine, KEY)] == ["DRV-101", "DRV-OLD"]  # learners
    save_run_report(engine, KEY, DAG_ID, summary(), keep_days=30)  # a run that read no course: the list stands
    assert [c["course_code"] for c in report_store.course_status(engine, KEY)] == ["DRV-101", "DRV-OLD"]


def test_course_status_read_time_follows_the_latest_try_that_read_results(psiber):
    engine, _ = psiber
    run_id = "scheduled__2026-11-20T02:00:00+00:00"
    learner = {"moodle_course_id": 7, "course_code": "DRV-101", "course_name": "Defensive Driving",
               "moodle_user_id": 1, "employee_number": "EE001", "learner_name": "Ann Smith", "completed": 0,
               "completed_on": None, "grade": None, "result": None, "passed": None, "result_on": None,
               "run_id": run_id}
    first = summary(run_id, "2026-11-20T02:05:00+00:00", try_number=0, state="failed")
    save_run_report(engine, KEY, DAG_ID, first, keep_days=400,
                    learners=CourseReads([learner], [], [course(7, "DRV-101")]))
    cleared = summary(run_id, "2026-11-20T09:14:00+00:00", try_number=1, state="success", complete=True)
    save_run_report(engine, KEY, DAG_ID, cleared, keep_days=400,  # the same results read again: no row changed
                    learners=CourseReads([], [], [course(7, "DRV-101")]))
    [status] = report_store.course_status(engine, KEY)
    assert str(status["read_at"])[:16] == "2026-11-20 09:14"


def test_records_keep_the_name_beside_their_key_and_are_found_by_it(psiber):
    engine, _ = psiber
    names = {"ee001": "Ann Smith", "ee002": "Bo Dlamini"}
    save_run_report(engine, KEY, DAG_ID, summary(outcomes=[
        outcome("EE001", "created"), outcome("EE002 / DRV-101", "recorded", flow="results"),
        outcome("EE002, export.csv line 3", "invalid", "surname is missing", "HR"), outcome("DRV-101", "created",
                                                                                          flow="courses")]),
        keep_days=30, names=names)
    run_id = summary()["run_id"]
    everything, _ = report_store.outcomes(engine, KEY, run_id, OutcomeFilter())
    assert {o["record"]: o["name"] for o in everything} == {
        "EE001": "Ann Smith", "EE002 / DRV-101": "Bo Dlamini", "EE002, export.csv line 3": "Bo Dlamini",
        "DRV-101": ""}
    found, _ = report_store.outcomes(engine, KEY, run_id, OutcomeFilter(search="dlamini"))
    assert [o["record"] for o in found] == ["EE002, export.csv line 3", "EE002 / DRV-101"]
    assert [row["name"] for row in report_store.record_history(engine, KEY, "EE001")] == ["Ann Smith"]


def test_a_targeted_runs_keys_are_kept_with_its_report(psiber):
    engine, _ = psiber
    save_run_report(engine, KEY, DAG_ID, summary(targeted_records=["EE00013", "EE00020"]), keep_days=30)
    assert report_store.run(engine, KEY, summary()["run_id"])["targeted"] == "EE00013, EE00020"
    save_run_report(engine, KEY, DAG_ID, summary("whole_run"), keep_days=30)
    assert report_store.run(engine, KEY, "whole_run")["targeted"] == ""


def test_report_tables_made_before_names_and_targeted_runs_get_the_columns(psiber):
    engine, _ = psiber
    report_store.create_report_schema(engine)
    with engine.begin() as connection:  # the columns as a release before them made the tables
        connection.execute(text("ALTER TABLE sync_report_outcome DROP COLUMN name"))
        connection.execute(text("ALTER TABLE sync_report_run DROP COLUMN targeted"))
    save_run_report(engine, KEY, DAG_ID, summary(targeted_records=["EE001"]), keep_days=30, names={"ee001": "Ann"})
    assert report_store.run(engine, KEY, summary()["run_id"])["targeted"] == "EE001"
    found, _ = report_store.outcomes(engine, KEY, summary()["run_id"], OutcomeFilter(search="ee001"))
    assert [o["name"] for o in found] == ["Ann"]


def test_outcomes_and_learner_rows_reach_the_store_a_chunk_at_a_time_and_read_back_as_if_written_at_once(
        psiber, tmp_path, monkeypatch):
    engine, _ = psiber
    steps = [[outcome(f"EE{n:03}", "created") for n in range(3)],
             [outcome(f"EE{n:03}", "failed", "refused", "Moodle administrator") for n in range(3, 5)]]
    for n, listed in enumerate(steps):
        write_outcomes(tmp_path / step_file(f"users.step{n}"), listed)
    learner = {"moodle_course_id": 7, "course_code": "DRV-101", "course_name": "Defensive Driving",
               "learner_name": "", "completed": 0, "completed_on": None, "grade": None, "result": None,
               "passed": None, "result_on": None, "run_id": "r1"}
    rows = [{**learner, "moodle_user_id": user, "employee_number": f"EE{user:03}"} for user in range(5)]
    save_run_report(engine, KEY, DAG_ID, summary("whole", outcomes=[o for listed in steps for o in listed]),
                    keep_days=30)
    monkeypatch.setattr(report_store, "ROWS_PER_WRITE", 2)
    sent: list[tuple[str, int]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(connection, cursor, statement, parameters, context, executemany):
        sent.append((statement.split("(")[0].strip(), len(parameters) if executemany else 1))

    read, _ = read_outcomes(tmp_path)
    save_run_report(engine, KEY, DAG_ID, summary("chunked", outcomes=read), keep_days=30,
                    learners=CourseReads(row for row in rows))
    event.remove(engine, "before_cursor_execute", count)
    assert [n for statement, n in sent if statement == "INSERT INTO sync_report_outcome"] == [2, 2, 1]
    assert [n for statement, n in sent if statement == "INSERT INTO sync_course_learner"] == [2, 2, 1]
    whole, chunked = (report_store.outcomes(engine, KEY, run_id, OutcomeFilter()) for run_id in ("whole", "chunked"))
    assert chunked == whole and whole[1] == 5
    assert report_store.run(engine, KEY, "chunked")["problems"] == 2
    assert [r["employee_number"] for r in report_store.course_learners(engine, KEY, 7)] == [
        f"EE{user:03}" for user in range(5)]

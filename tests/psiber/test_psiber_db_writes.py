"""PSIber writes of a night: only what changed is written, in batched statements (SQLite and PostgreSQL)."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, text

from psiber.demo_company import seed_demo_company
from psiber.psiber_db import save_courses, save_refusals, save_result_parts, upsert_user_links

KEY = "driver_training"


@contextmanager
def statements_run(engine):
    """The SQL verbs (SELECT, INSERT, ...) sent, one per statement or batch."""
    verbs: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        verbs.append(next(line for line in statement.splitlines() if not line.startswith("--")).split()[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield verbs
    finally:
        event.remove(engine, "before_cursor_execute", record)


def employee_ids(engine, count: int) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT employee_id FROM employee ORDER BY employee_id")).scalars())[:count]


def test_a_quiet_night_writes_no_link_and_a_moved_moodle_user_keeps_one_employee(psiber):
    engine, _ = psiber
    seed_demo_company(engine, employees=20)
    a, b, c = employee_ids(engine, 3)
    links = [(a, 101, "a@x.com"), (b, 102, "b@x.com"), (c, 103, "c@x.com")]
    assert upsert_user_links(engine, KEY, links) == 3
    with statements_run(engine) as verbs:
        assert upsert_user_links(engine, KEY, links) == 0
    assert verbs == ["SELECT"]
    with statements_run(engine) as verbs:  # a and b swap their Moodle users; c renamed
        assert upsert_user_links(engine, KEY, [(a, 102, "b@x.com"), (b, 101, "a@x.com"), (c, 103, "c2@x.com")]) == 3
    assert verbs == ["SELECT", "DELETE", "INSERT"]  # one batch per statement, whatever the number of links
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT employee_id, moodle_user_id, moodle_username FROM moodle_user_link "
                                       "ORDER BY employee_id")).all()
    assert [tuple(row) for row in rows] == [(a, 102, "b@x.com"), (b, 101, "a@x.com"), (c, 103, "c2@x.com")]


def test_results_synced_again_add_nothing_and_refusals_are_forgotten_only_where_held(psiber):
    engine, _ = psiber
    seed_demo_company(engine, employees=20)
    a, b = employee_ids(engine, 2)
    save_courses(engine, KEY, [{"course_code": "C1", "description": "Course 1", "status": "Active",
                                "moodle_course_id": 5}], [])
    attempts = [{"attempt_key": f"{KEY}:5:{employee}:Competent:80", "employee_id": employee, "course_code": "C1",
                 "attempt_date": "2026-11-20", "result": "Competent", "grade": 80} for employee in (a, b)]
    completions = [{"attempt_key": attempt["attempt_key"], "employee_id": attempt["employee_id"],
                    "course_code": "C1", "completed_on": "2026-11-20", "result": "Competent"} for attempt in attempts]
    assert save_result_parts(engine, KEY, [(attempts, completions)], synced_until=100) == (
        [a["attempt_key"] for a in attempts], 2)
    with statements_run(engine) as verbs:
        assert save_result_parts(engine, KEY, [(attempts + attempts[:1], completions)], synced_until=200) == ([], 0)
    assert "INSERT" not in verbs[:-1]  # only the watermark's upsert writes

    save_refusals(engine, KEY, [{"employee_id": a, "fingerprint": "f", "reason": "refused", "owner": "HR"}], [])
    with statements_run(engine) as verbs:
        save_refusals(engine, KEY, [], [a, b])
    assert verbs == ["SELECT", "DELETE"]
    with statements_run(engine) as verbs:
        save_refusals(engine, KEY, [], [a, b])
    assert verbs == ["SELECT"]

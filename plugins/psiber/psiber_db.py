"""PSIber's database: engines from Airflow Connections, and the project's SQL files."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, bindparam, create_engine, text
from sqlalchemy.engine import URL

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"

_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2"}


@cache
def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def engine_from_connection(conn_id: str) -> Engine:
    """SQLite (Host = database file path) or PostgreSQL (Host, Port, Login, Password, Schema = database)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "sqlite":
        return create_engine(URL.create("sqlite", database=conn.host), hide_parameters=True)
    if conn.conn_type in _DRIVERS:
        return create_engine(
            URL.create(_DRIVERS[conn.conn_type], username=conn.login, password=conn.password,
                       host=conn.host, port=conn.port, database=conn.schema),
            pool_pre_ping=True,
            hide_parameters=True,  # errors must not print employees' personal data into task logs
        )
    raise ValueError(
        f"connection '{conn_id}' is of type '{conn.conn_type}'; PSIber must be 'sqlite' or 'postgres' "
        "(owner: data engineer who set up the connection)"
    )


def create_schema(engine: Engine) -> None:
    """Create the tables the integration reads and writes, if missing (idempotent)."""
    statements = [part.strip() for part in sql("schema").split(";\n") if part.strip()]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def select_employees(engine: Engine, payrolls: Iterable[str] | None) -> pd.DataFrame:
    """Employees of the given payroll codes, or of every payroll when ``payrolls`` is None."""
    query = text(sql("select_employees")).bindparams(bindparam("payrolls", expanding=True))
    return _frame(engine, query, {"all_payrolls": int(payrolls is None), "payrolls": list(payrolls or [""])})


def count_employees_by_payroll(engine: Engine) -> dict[str, int]:
    return {row["payroll_code"]: int(row["employees"]) for row in _rows(engine, "count_employees_by_payroll")}


def select_user_links(engine: Engine, integration_name: str) -> pd.DataFrame:
    return _frame(engine, text(sql("select_user_links")), {"integration_name": integration_name})


def _frame(engine: Engine, query, params: dict) -> pd.DataFrame:
    """Rows as a frame of Python objects (text stays text: employee numbers like '007')."""
    with engine.connect() as connection:
        result = connection.execute(query, params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)


def upsert_user_links(engine: Engine, integration_name: str, links: Iterable[tuple[int, int, str]]) -> int:
    """Write employee ↔ Moodle user links; returns how many rows were new or changed."""
    now = _now()
    written = 0
    with engine.begin() as connection:
        for employee_id, moodle_user_id, username in links:
            keys = {"integration_name": integration_name, "employee_id": int(employee_id),
                    "moodle_user_id": int(moodle_user_id)}
            connection.execute(text(sql("delete_moved_user_link")), keys)
            result = connection.execute(text(sql("upsert_user_link")),
                                        {**keys, "moodle_username": username, "linked_at": now})
            written += result.rowcount
    return written


def _rows(engine: Engine, name: str, params: dict | None = None) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(sql(name)), params or {}).mappings()]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def select_courses(engine: Engine) -> list[dict]:
    return _rows(engine, "select_courses")


def select_picklists(engine: Engine) -> dict[str, set[str]]:
    picklists: dict[str, set[str]] = {}
    for row in _rows(engine, "select_picklist_items"):
        picklists.setdefault(row["picklist"], set()).add(row["item_value"])
    return picklists


def save_courses(engine: Engine, integration_name: str, courses: list[dict], new_categories: list[str]) -> int:
    """Add new categories to the course category picklist and write the courses, in one transaction."""
    now = _now()
    written = 0
    with engine.begin() as connection:
        for category in new_categories:
            connection.execute(text(sql("add_picklist_item")), {"picklist": "course_category", "item_value": category})
        for course in courses:
            written += connection.execute(text(sql("upsert_course")), {
                **{key: course.get(key) for key in ("course_code", "description", "category", "status", "saqa_id",
                                                    "nqf_recognised", "min_pass_rate", "nqf_level", "course_level",
                                                    "moodle_course_id")},
                "start_date": date.fromisoformat(str(course["start_date"])[:10]) if course.get("start_date") else None,
                "integration_name": integration_name, "updated_at": now,
            }).rowcount
    return written


def select_watermark(engine: Engine, integration_name: str, flow: str) -> int:
    rows = _rows(engine, "select_watermark", {"integration_name": integration_name, "flow": flow})
    return int(rows[0]["synced_until"]) if rows else 0


def select_moodle_completions(engine: Engine, integration_name: str) -> set[tuple[int, int]]:
    rows = _rows(engine, "select_moodle_completions", {"integration_name": integration_name})
    return {(int(row["employee_id"]), int(row["moodle_course_id"])) for row in rows}


def save_results(engine: Engine, integration_name: str, attempts: list[dict], completions: list[dict],
                 synced_until: int, full_sync_at: int | None = None) -> tuple[list[str], int]:
    """Write attempts and completions and move the watermark, all or nothing.

    A completion changes only with a new attempt: a result read again (perhaps with a less
    precise date, when Moodle's completion time is not re-read) leaves it as it was.
    Returns (keys of the attempts that were new, number of changed completions).
    """
    now = _now()
    new_attempts: list[str] = []
    changed_completions = 0
    with engine.begin() as connection:
        for attempt in attempts:
            inserted = connection.execute(text(sql("insert_course_attempt")), {
                key: attempt[key] for key in ("attempt_key", "employee_id", "course_code", "attempt_date", "result",
                                              "grade")} | {"recorded_at": now}).rowcount
            if inserted:
                new_attempts.append(attempt["attempt_key"])
        new_keys = set(new_attempts)
        for completion in completions:
            if completion["attempt_key"] in new_keys:
                changed_completions += connection.execute(text(sql("upsert_course_completion")), {
                    key: completion[key] for key in ("employee_id", "course_code", "completed_on", "result")
                } | {"updated_at": now}).rowcount
        marks = {"results": synced_until} | ({"results_full": full_sync_at} if full_sync_at else {})
        for flow, until in marks.items():
            connection.execute(text(sql("upsert_watermark")), {"integration_name": integration_name, "flow": flow,
                                                                "synced_until": until})
    return new_attempts, changed_completions


def select_refusals(engine: Engine, integration_name: str) -> pd.DataFrame:
    return _frame(engine, text(sql("select_refusals")), {"integration_name": integration_name})


def save_refusals(engine: Engine, integration_name: str, refused: Iterable[dict], accepted: Iterable[int]) -> None:
    """Remember the records Moodle refused (employee_id, fingerprint, reason, owner) and forget the
    accepted ones, in one transaction."""
    now = _now()
    with engine.begin() as connection:
        for employee_id in accepted:
            connection.execute(text(sql("delete_refusal")), {"integration_name": integration_name,
                                                             "employee_id": int(employee_id)})
        for refusal in refused:
            connection.execute(text(sql("upsert_refusal")), {
                "integration_name": integration_name, "employee_id": int(refusal["employee_id"]),
                "fingerprint": refusal["fingerprint"], "reason": refusal["reason"][:2000],
                "owner": refusal["owner"][:200], "refused_at": now})


class WriteLockBusyError(RuntimeError):
    """Another run holds the integration's write lock; this one waits, then its task is retried."""


@contextmanager
def integration_write_lock(engine: Engine, integration_name: str, holder: str, *, hold_seconds: int = 7200,
                           wait_seconds: float = 600, poll_seconds: float = 2.0) -> Iterator[None]:
    """Let one run at a time write for an integration, whatever started it (scheduler, dag.test(), a
    backfill, a second deployment). A lock whose holder died expires after ``hold_seconds``;
    the same holder (a retried task of the same run) takes its own lock back at once."""
    deadline = time.monotonic() + wait_seconds
    keys = {"integration_name": integration_name, "holder": holder[:250]}
    while True:
        now = _now()
        with engine.begin() as connection:
            taken = connection.execute(text(sql("acquire_write_lock")), {
                **keys, "now": now, "expires_at": now + timedelta(seconds=hold_seconds)}).rowcount
            current = None if taken else connection.execute(text(sql("select_write_lock")), keys).mappings().first()
        if taken:
            break
        if time.monotonic() >= deadline:
            other = f"{current['holder']}, since {current['acquired_at']}" if current else "just released"
            raise WriteLockBusyError(
                f"integration '{integration_name}' is being written by another run ({other}); this task is retried "
                "later (owner: none, unless that run is stuck: then the data engineer)")
        time.sleep(poll_seconds)
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text(sql("release_write_lock")), keys)

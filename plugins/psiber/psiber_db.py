"""PSIber's database: the tables the integration reads and writes (SQL in include/sql/*.sql)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Engine, bindparam, inspect, text

from sync_common.database import rows_of_keys, sql, statements


def create_schema(engine: Engine) -> None:
    """Create the tables the integration reads and writes, if missing, and add columns newer than a table
    (idempotent)."""
    with engine.begin() as connection:
        for statement in statements("schema") + statements("ess_schema") + statements("write_lock_schema"):
            connection.execute(text(statement))
    add_link_fingerprint(engine)


# Columns newer than the link table, and the SQL file that adds each to a table made before it.
_LATER_LINK_COLUMNS = {"synced_fingerprint": "user_link_add_fingerprint",
                       "source_fingerprint": "user_link_add_source_fingerprint"}


def add_link_fingerprint(engine: Engine) -> None:
    """Add the links' fingerprints to a link table made before them (idempotent)."""
    present = {column["name"] for column in inspect(engine).get_columns("moodle_user_link")}
    for column, adding in _LATER_LINK_COLUMNS.items():
        if column not in present:
            with engine.begin() as connection:
                connection.execute(text(sql(adding)))


def select_employees(engine: Engine, payrolls: Iterable[str] | None) -> pd.DataFrame:
    """Employees of the given payroll codes, or of every payroll when ``payrolls`` is None."""
    query = text(sql("select_employees")).bindparams(bindparam("payrolls", expanding=True))
    return _frame(engine, query, {"all_payrolls": int(payrolls is None), "payrolls": list(payrolls or [""])})


def count_employees_by_payroll(engine: Engine) -> dict[str, int]:
    return {row["payroll_code"]: int(row["employees"]) for row in _rows(engine, "count_employees_by_payroll")}


def select_user_links(engine: Engine, integration_name: str) -> pd.DataFrame:
    return _frame(engine, text(sql("select_user_links")), {"integration_name": integration_name})


def _frame(engine: Engine, query, params: dict) -> pd.DataFrame:
    """Rows as a frame of Python objects (text stays text: employee numbers like '007'). Given as plain tuples:
    pandas probes each row for namedtuple fields, which a SQLAlchemy row answers by raising and catching."""
    with engine.connect() as connection:
        result = connection.execute(query, params)
        return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()), dtype=object)


def upsert_user_links(engine: Engine, integration_name: str, links: Iterable[tuple[int, int, str]]) -> int:
    """Write the employee ↔ Moodle user links that are new or changed (a quiet night writes none);
    returns how many."""
    now = _now()
    links = list(links)
    with engine.begin() as connection:
        stored = {int(row.employee_id): (int(row.moodle_user_id), row.moodle_username) for row in _links_of(
            connection, integration_name, [employee_id for employee_id, _, _ in links])}
        changed = [{"integration_name": integration_name, "employee_id": int(employee_id),
                    "moodle_user_id": int(moodle_user_id), "moodle_username": username, "linked_at": now}
                   for employee_id, moodle_user_id, username in links
                   if stored.get(int(employee_id)) != (int(moodle_user_id), username)]
        if changed:
            connection.execute(text(sql("delete_moved_user_link")), changed)
            connection.execute(text(sql("upsert_user_link")), changed)
    return len(changed)


def save_link_fingerprints(engine: Engine, integration_name: str, fingerprints: dict[int, str | None],
                           full_read_at: int | None = None, sources: Mapping[int, str | None] | None = None) -> None:
    """Remember per link what Moodle last confirmed of the employee (None: read it again) and the source row it was
    synced from (``sources``; None, or no entry: none, so the row is checked again), only where they changed, and
    when a full read of the linked accounts was last planned and applied (watermark ``users_full``)."""
    sources = sources or {}
    with engine.begin() as connection:
        stored = {int(row.employee_id): (row.synced_fingerprint, row.source_fingerprint)
                  for row in _links_of(connection, integration_name, list(fingerprints))}
        wanted = {int(employee_id): (value, sources.get(int(employee_id)) if value else None)
                  for employee_id, value in fingerprints.items()}
        changed = [{"integration_name": integration_name, "employee_id": employee_id, "synced_fingerprint": synced,
                    "source_fingerprint": source} for employee_id, (synced, source) in wanted.items()
                   if employee_id in stored and stored[employee_id] != (synced, source)]
        if changed:
            connection.execute(text(sql("update_user_link_fingerprint")), changed)
        if full_read_at is not None:
            connection.execute(text(sql("upsert_watermark")), {"integration_name": integration_name,
                                                                "flow": "users_full", "synced_until": full_read_at})


def _links_of(connection, integration_name: str, employee_ids: list[int]) -> list:
    """The stored links of these employees (a quiet night writes few: it reads no others)."""
    return list(rows_of_keys(connection, "select_user_links_of", "employee_ids",
                             sorted({int(employee_id) for employee_id in employee_ids}),
                             {"integration_name": integration_name}))


def delete_user_links(engine: Engine, integration_name: str, employee_ids: Iterable[int]) -> None:
    """Drop the links of these employees (their Moodle account was deleted by an administrator)."""
    rows = [{"integration_name": integration_name, "employee_id": int(employee_id)} for employee_id in employee_ids]
    if rows:
        with engine.begin() as connection:
            connection.execute(text(sql("delete_user_link")), rows)


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


def select_moodle_completions(engine: Engine, integration_name: str,
                              employee_ids: list[int]) -> set[tuple[int, int]]:
    """(employee, Moodle course) pairs of these employees whose Moodle completion PSIber holds."""
    with engine.connect() as connection:
        return {(int(row.employee_id), int(row.moodle_course_id)) for row in rows_of_keys(
            connection, "select_moodle_completions", "employee_ids", employee_ids,
            {"integration_name": integration_name})}


def save_result_parts(engine: Engine, integration_name: str, parts: Iterable[tuple[list[dict], list[dict]]],
                      synced_until: int, full_sync_at: int | None = None) -> tuple[list[str], int]:
    """Write attempts and completions, part by part (each an (attempts, completions) pair, taken as the writing
    reaches it, so a plan of any size needs the memory of one part), and move the watermark, all or nothing.

    A completion changes only with a new attempt: a result read again (perhaps with a less
    precise date, when Moodle's completion time is not re-read) leaves it as it was.
    Returns (keys of the attempts that were new, number of changed completions).
    """
    now = _now()
    new_attempts: list[str] = []
    changed_completions = 0
    upsert_completion = text(sql("upsert_course_completion"))
    with engine.begin() as connection:
        for attempts, completions in parts:
            inserted = _insert_new_attempts(connection, attempts, now)
            new_keys = set(inserted)
            changed_completions += sum(connection.execute(upsert_completion, {
                key: completion[key] for key in ("employee_id", "course_code", "completed_on", "result")
            } | {"updated_at": now}).rowcount for completion in completions if completion["attempt_key"] in new_keys)
            new_attempts += inserted
        marks = {"results": synced_until} | ({"results_full": full_sync_at} if full_sync_at else {})
        for flow, until in marks.items():
            connection.execute(text(sql("upsert_watermark")), {"integration_name": integration_name, "flow": flow,
                                                                "synced_until": until})
    return new_attempts, changed_completions


def _insert_new_attempts(connection, attempts: list[dict], now: datetime) -> list[str]:
    """Insert the attempts whose key is not held yet (an earlier part's included: the same transaction holds them);
    their keys, in plan order."""
    planned = {attempt["attempt_key"]: attempt for attempt in attempts}
    recorded = _attempt_keys_held(connection, list(planned))
    new_keys = [key for key in planned if key not in recorded]
    if new_keys:
        connection.execute(text(sql("insert_course_attempt")), [
            {key: planned[attempt_key][key] for key in ("attempt_key", "employee_id", "course_code",
                                                        "attempt_date", "result", "grade")} | {"recorded_at": now}
            for attempt_key in new_keys])
    return new_keys


def select_refusals(engine: Engine, integration_name: str) -> pd.DataFrame:
    return _frame(engine, text(sql("select_refusals")), {"integration_name": integration_name})


def save_refusals(engine: Engine, integration_name: str, refused: Iterable[dict], accepted: Iterable[int]) -> None:
    """Remember the records Moodle refused (employee_id, fingerprint, reason, owner) and forget the
    accepted ones, in one transaction."""
    now = _now()
    with engine.begin() as connection:
        held = {int(row.employee_id) for row in connection.execute(text(sql("select_refusals")),
                                                                    {"integration_name": integration_name})}
        taken = [{"integration_name": integration_name, "employee_id": int(employee_id)}
                 for employee_id in accepted if int(employee_id) in held]
        if taken:
            connection.execute(text(sql("delete_refusal")), taken)
        refusals = [{"integration_name": integration_name, "employee_id": int(refusal["employee_id"]),
                     "fingerprint": refusal["fingerprint"], "reason": refusal["reason"][:2000],
                     "owner": refusal["owner"][:200], "refused_at": now} for refusal in refused]
        if refusals:
            connection.execute(text(sql("upsert_refusal")), refusals)


def _attempt_keys_held(connection, keys: list[str]) -> set[str]:
    return {row.attempt_key for row in rows_of_keys(connection, "select_attempt_keys", "attempt_keys", keys)}

"""The school MIS database: people, classes, memberships, and the Moodle links the sync keeps there
(SQL in include/sql/school_*.sql, portable SQLite / PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, text

from sync_common.database import sql, statements
from sync_common.write_lock import create_write_lock_table


def create_schema(engine: Engine) -> None:
    """Create the MIS and link tables, and the write lock's, if missing (idempotent)."""
    with engine.begin() as connection:
        for statement in statements("school_schema"):
            connection.execute(text(statement))
    create_write_lock_table(engine)


def _frame(engine: Engine, name: str, params: dict | None = None) -> pd.DataFrame:
    """Rows as a frame of Python objects (text stays text: External IDs like '007')."""
    with engine.connect() as connection:
        result = connection.execute(text(sql(name)), params or {})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)


def select_people(engine: Engine) -> pd.DataFrame:
    return _frame(engine, "school_select_people")


def select_classes(engine: Engine) -> pd.DataFrame:
    return _frame(engine, "school_select_classes")


def select_memberships(engine: Engine) -> pd.DataFrame:
    return _frame(engine, "school_select_memberships")


def select_user_links(engine: Engine, integration_name: str) -> dict[str, int]:
    frame = _frame(engine, "school_select_user_links", {"integration_name": integration_name})
    return {str(row.external_id): int(row.moodle_user_id) for row in frame.itertuples()}


def select_course_links(engine: Engine, integration_name: str) -> dict[str, int]:
    frame = _frame(engine, "school_select_course_links", {"integration_name": integration_name})
    return {str(row.class_external_id): int(row.moodle_course_id) for row in frame.itertuples()}


def save_links(engine: Engine, kind: str, integration_name: str, linked: Iterable[tuple[str, int]],
               unlinked: Iterable[str]) -> int:
    """Drop the ``kind`` ('user' or 'course') links of records Moodle no longer holds, then write the links (a
    record matched again or made anew in the same run keeps its new link), in one transaction; returns how many
    rows changed."""
    key = "external_id" if kind == "user" else "class_external_id"
    now = datetime.now(UTC).replace(tzinfo=None)
    changed = 0
    with engine.begin() as connection:
        for external_id in unlinked:
            changed += connection.execute(text(sql(f"school_delete_{kind}_link")),
                                          {"integration_name": integration_name, key: external_id}).rowcount
        for external_id, moodle_id in linked:
            changed += connection.execute(text(sql(f"school_upsert_{kind}_link")), {
                "integration_name": integration_name, key: external_id, f"moodle_{kind}_id": int(moodle_id),
                "linked_at": now}).rowcount
    return changed


def insert_rows(engine: Engine, table: str, rows: Iterable[dict]) -> None:
    """Add MIS rows (``table``: person, class or membership), as the MIS itself would."""
    rows = list(rows)
    if rows:
        with engine.begin() as connection:
            connection.execute(text(sql(f"school_insert_{table}")), rows)


def replace_academic_year(engine: Engine, academic_year: int) -> None:
    """The MIS side of a rollover: an academic year's classes and their memberships go."""
    with engine.begin() as connection:
        for name in ("school_delete_year_memberships", "school_delete_year_classes"):
            connection.execute(text(sql(name)), {"academic_year": academic_year})


def set_person_status(engine: Engine, statuses: dict[str, str]) -> None:
    with engine.begin() as connection:
        for external_id, status in statuses.items():
            connection.execute(text(sql("school_update_person_status")),
                               {"external_id": external_id, "status": status})


def select_refusals(engine: Engine, kind: str, integration_name: str) -> list[dict]:
    """The ``kind`` ('user' or 'course') records Moodle refused, keyed ``record_key`` (their External ID)."""
    frame = _frame(engine, "school_select_refusals", {"integration_name": integration_name, "kind": kind})
    return [{**row, "record_key": str(row["record_key"]), "first_refused_at": str(row["first_refused_at"]),
             "last_refused_at": str(row["last_refused_at"])} for row in frame.to_dict("records")]


def save_refusals(engine: Engine, kind: str, integration_name: str, refused: Iterable[dict],
                  accepted: Iterable[str]) -> None:
    """Remember the ``kind`` records Moodle refused (external_id, fingerprint, reason, owner) and forget those it
    took, in one transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    key = {"integration_name": integration_name, "kind": kind}
    with engine.begin() as connection:
        held = {str(row.record_key) for row in connection.execute(text(sql("school_select_refusals")), key)}
        taken = [{**key, "external_id": external_id} for external_id in set(accepted) & held]
        if taken:
            connection.execute(text(sql("school_delete_refusal")), taken)
        rows = [{**key, "external_id": refusal["external_id"], "fingerprint": refusal["fingerprint"],
                 "reason": refusal["reason"][:2000], "owner": refusal["owner"][:200], "refused_at": now}
                for refusal in refused]
        if rows:
            connection.execute(text(sql("school_upsert_refusal")), rows)

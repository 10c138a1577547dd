"""One run at a time writes for an integration: a lock row in the integration's own database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from sync_common.database import sql, statements


class WriteLockBusyError(RuntimeError):
    """Another run holds the integration's write lock; this one waits, then its task is retried."""


def create_write_lock_table(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in statements("write_lock_schema"):
            connection.execute(text(statement))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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

"""PSIber's database: engines from Airflow Connections, and the project's SQL files."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
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


def select_user_links(engine: Engine, integration_name: str) -> pd.DataFrame:
    return _frame(engine, text(sql("select_user_links")), {"integration_name": integration_name})


def _frame(engine: Engine, query, params: dict) -> pd.DataFrame:
    """Rows as a frame of Python objects (text stays text: employee numbers like '007')."""
    with engine.connect() as connection:
        result = connection.execute(query, params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)


def upsert_user_links(engine: Engine, integration_name: str, links: Iterable[tuple[int, int, str]]) -> int:
    """Write employee ↔ Moodle user links; returns how many rows were new or changed."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
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

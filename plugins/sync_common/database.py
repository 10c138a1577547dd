"""Each kind's databases: engines from Airflow Connections, and the project's SQL files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, Row, bindparam, create_engine, text
from sqlalchemy.engine import URL

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"

_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2"}


@cache
def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """The statements of a SQL file whose statements end with ';' at a line end (schema files)."""
    return [part.strip() for part in sql(name).split(";\n") if part.strip()]


KEYS_PER_QUERY = 500  # keys bound per IN list, well under SQLite's limit of bound parameters


def rows_of_keys(connection: Connection, name: str, keys_param: str, keys: Sequence,
                 params: Mapping | None = None) -> Iterator[Row]:
    """The rows the SQL file ``name`` answers for these keys (its ``IN :keys_param``), ``KEYS_PER_QUERY`` keys a
    query, so that any number of keys stays within the database's bound-parameter limit (no keys: no query)."""
    query = text(sql(name)).bindparams(bindparam(keys_param, expanding=True))
    for start in range(0, len(keys), KEYS_PER_QUERY):
        yield from connection.execute(query, {**(params or {}), keys_param: list(keys[start:start + KEYS_PER_QUERY])})


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
            hide_parameters=True,  # errors must not print personal data into task logs
        )
    raise ValueError(
        f"connection '{conn_id}' is of type '{conn.conn_type}'; a source database must be 'sqlite' or 'postgres' "
        "(owner: data engineer who set up the connection)"
    )

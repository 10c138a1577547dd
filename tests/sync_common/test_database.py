"""The project's SQL helpers on a real SQLite database."""

from __future__ import annotations

from sqlalchemy import create_engine, event, text

from sync_common import database
from sync_common.database import rows_of_keys


def test_keys_beyond_one_query_are_read_in_pages_and_none_is_lost(monkeypatch):
    monkeypatch.setattr(database, "KEYS_PER_QUERY", 4)
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE course_attempt (attempt_key VARCHAR(64) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO course_attempt VALUES (:key)"), [{"key": f"k{n}"} for n in range(10)])
    queries = []
    event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    with engine.connect() as connection:
        found = [row.attempt_key for row in rows_of_keys(connection, "select_attempt_keys", "attempt_keys",
                                                         [f"k{n}" for n in range(0, 20, 2)])]
        assert sorted(found) == ["k0", "k2", "k4", "k6", "k8"]
        assert len(queries) == 3  # 10 keys, 4 a query
        assert list(rows_of_keys(connection, "select_attempt_keys", "attempt_keys", [])) == []
        assert len(queries) == 3  # no keys: no query

"""Test session set-up: an Airflow home of its own, before anything imports Airflow."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("PSIBER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="psiber-moodle-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "PSIBER_MOODLE_TASK_RETRIES": "0",
})


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database, migrated once per session (dag.test() needs it)."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ.copy())
    return AIRFLOW_HOME


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def psiber(request, tmp_path):
    """(engine, Airflow connection JSON) of a PSIber database made for this test only."""
    if request.param == "sqlite":
        path = tmp_path / "psiber.db"
        yield create_engine(f"sqlite:///{path}"), {"conn_type": "sqlite", "host": str(path)}
        return
    server = make_url(POSTGRES_URL)
    name = f"psiber_test_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(server.set(database=name))
    try:
        yield engine, {"conn_type": "postgres", "host": server.host, "port": server.port, "login": server.username,
                       "password": server.password, "schema": name}
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

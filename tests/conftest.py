"""Test session set-up: an Airflow home of its own, before anything imports Airflow; the test tiers.

Tiers (markers, registered in pytest.ini): ``e2e`` (a DAG run for real with dag.test(), one night or
several, faults included), ``scheduler`` (Airflow's own scheduler and Celery workers) and ``browser``
(the report in Airflow's UI, in chromium); the rest are the fast unit, plan, step and contract tests.
Each test gets its tier here, from the module it is in or the DAG-running fixture it asks for, so a
test added to an end-to-end module or using such a fixture is in its tier without a mark of its own.
``pytest`` alone runs the fast tier; naming files or directories, or choosing with ``-m`` or ``-k``
(``-m ""``: every tier, as ``scripts/test.sh`` does), runs what is asked.
"""

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
    "MOODLE_SYNC_TASK_RETRIES": "0",
})


SLOW_TIERS = ("e2e", "scheduler", "browser")
FAST_TIER = " and ".join(f"not {tier}" for tier in SLOW_TIERS)
TIER_OF_MODULE = {  # besides every test_*end_to_end.py module, which is e2e
    "test_failed_run_report.py": "e2e",
    "test_demo_cli.py": "e2e",
    "test_real_scheduler.py": "scheduler",
    "test_report_in_browser.py": "browser",
}
E2E_FIXTURES = {"demo_run", "ess_night", "school_run"}  # each runs a DAG with dag.test()


def pytest_configure(config):
    """The bare command (no paths, no ``-m`` or ``-k``) runs the fast tier."""
    chose = any(arg.startswith(("-m", "-k")) for arg in config.invocation_params.args)
    if not (chose or config.option.markexpr or config.option.keyword) \
            and config.args_source is pytest.Config.ArgsSource.TESTPATHS:
        config.option.markexpr = FAST_TIER


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = TIER_OF_MODULE.get(item.path.name, "e2e" if item.path.name.endswith("end_to_end.py") else None)
        if tier is None and E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            tier = "e2e"
        if tier:
            item.add_marker(tier)


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

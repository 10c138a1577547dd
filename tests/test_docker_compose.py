"""docker-compose.yaml against the project and against what tests/test_real_scheduler.py runs, without Docker.

The settings the real-scheduler test gives Airflow come from its own ``airflow_environment``, so a setting added
there and missing here fails this test. The Connections come from the integration files the containers read.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from object_store import LocalObjectStore
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from test_real_scheduler import BUCKET, MACHINES, airflow_environment

from psiber.config import load_integrations
from psiber.psiber_db import create_schema as create_psiber_schema
from school.config import load_school_integrations
from school.school_db import create_schema as create_school_schema
from sync_common.database import SQL_DIR, statements

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
AIRFLOW_ENV = COMPOSE["x-airflow-common"]["environment"]
PROJECT_MOUNT = "./:/opt/project:ro"
VARIABLE = re.compile(r"\$\{(\w+)\}")
SECRET_SETTING = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
# Settings of the test's own processes on one machine, and of the faults it injects:
TEST_ONLY = {"AIRFLOW__API__BASE_URL", "AIRFLOW__API__HOST", "AIRFLOW__API__PORT", "AIRFLOW__API__WORKERS",
             "AIRFLOW__LOGGING__LOGGING_LEVEL", "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "MOODLE_SYNC_TASK_RETRIES"}
# Settings both give, each its own value (addresses, folders, secrets, sizes); checked for their shape below:
OWN_VALUE = {"AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
             "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
             "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
             "PSIBER_MOODLE_INTEGRATIONS", "MOODLE_SYNC_DATA_DIR"}


def connection(conn_id: str) -> dict:
    """An ``AIRFLOW_CONN_*`` of the file (JSON whose secrets are ``"${VAR}"`` strings)."""
    return json.loads(AIRFLOW_ENV[f"AIRFLOW_CONN_{conn_id.upper()}"])


def connection_ids() -> list[str]:
    return [key.removeprefix("AIRFLOW_CONN_").lower() for key in AIRFLOW_ENV if key.startswith("AIRFLOW_CONN_")]


def in_project(container_path: str) -> Path:
    """The repository path the read-only project mount shows at ``container_path``."""
    return ROOT / PurePosixPath(container_path).relative_to("/opt/project")


def airflow_services() -> dict[str, dict]:
    return {name: service for name, service in SERVICES.items() if service.get("build") == "."}


def command(service: dict) -> list[str]:
    value = service.get("command", [])
    return shlex.split(value) if isinstance(value, str) else value


@pytest.fixture
def real_scheduler_settings(tmp_path) -> dict[str, str]:
    """What tests/test_real_scheduler.py gives Airflow (its own function, on placeholder addresses)."""
    databases = {role: make_url(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{role}")
                 for role in ("airflow", "psiber")}
    settings = airflow_environment(tmp_path, databases, "redis://127.0.0.1:6379/11", LocalObjectStore(BUCKET),
                                   "http://127.0.0.1:1", "token", 8080)
    return {key: value for key, value in settings.items()
            if key.startswith(("AIRFLOW", "PSIBER_MOODLE", "MOODLE_SYNC"))}


def test_every_airflow_setting_of_the_real_scheduler_test_is_in_the_compose_file(real_scheduler_settings):
    missing = set(real_scheduler_settings) - TEST_ONLY - set(AIRFLOW_ENV)
    assert not missing, f"the real-scheduler test sets {sorted(missing)}; docker-compose.yaml does not"
    shared = {key for key in set(real_scheduler_settings) - TEST_ONLY - OWN_VALUE
              if not key.startswith("AIRFLOW_CONN_")}
    assert "AIRFLOW__CORE__EXECUTOR" in shared
    assert {key: AIRFLOW_ENV[key] for key in shared} == {key: real_scheduler_settings[key] for key in shared}
    for conn_id in connection_ids():
        tested = real_scheduler_settings.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if tested:
            assert connection(conn_id)["conn_type"] == json.loads(tested)["conn_type"], conn_id


def test_every_connection_the_integration_files_name_is_given_to_airflow():
    psiber, psiber_errors = load_integrations(in_project(AIRFLOW_ENV["PSIBER_MOODLE_INTEGRATIONS"]))
    school, school_errors = load_school_integrations(in_project(AIRFLOW_ENV["SCHOOL_MOODLE_INTEGRATIONS"]))
    assert psiber and school and not psiber_errors and not school_errors
    named = {conn_id for integration in psiber.values() for conn_id in (
        integration.moodle_conn_id, integration.psiber_conn_id, integration.users.new_user_passwords.connection_id)
        if conn_id}
    named |= {conn_id for integration in school.values() for conn_id in (integration.moodle_conn_id,
                                                                         integration.school_conn_id)}
    named.add(urlsplit(AIRFLOW_ENV["MOODLE_SYNC_DATA_DIR"]).username)
    given = set(connection_ids())
    assert named <= given, f"no AIRFLOW_CONN_* for {sorted(named - given)}"
    assert given == named, f"AIRFLOW_CONN_* no integration uses: {sorted(given - named)}"


def test_every_connection_reaches_a_service_of_the_file():
    for conn_id in connection_ids():
        conn = connection(conn_id)
        address = conn.get("extra", {}).get("endpoint_url") or conn.get("host")
        if address is None:
            continue  # a secret held in a Connection, nothing to reach
        host = urlsplit(address).hostname if "://" in address else address
        assert host in SERVICES, f"{conn_id} points at {host}, not a service of docker-compose.yaml"


@pytest.mark.parametrize(("service", "create_schema"), [("psiber-db", create_psiber_schema),
                                                         ("school-db", create_school_schema)])
def test_source_databases_start_with_the_tables_the_project_creates(service, create_schema):
    """The database's init scripts, run in the order PostgreSQL runs them, make what create_schema makes."""
    mounts = [volume.split(":") for volume in SERVICES[service]["volumes"] if volume.startswith("./")]
    scripts = sorted((target, source) for source, target, _ in mounts)
    assert all(target.startswith("/docker-entrypoint-initdb.d/") for target, _ in scripts)
    from_scripts, from_project = create_engine("sqlite://"), create_engine("sqlite://")
    with from_scripts.begin() as db:
        for _, source in scripts:
            assert (ROOT / source).parent == SQL_DIR
            for statement in statements(Path(source).stem):
                db.execute(text(statement))
    create_schema(from_project)
    assert set(inspect(from_scripts).get_table_names()) == set(inspect(from_project).get_table_names())
    env = SERVICES[service]["environment"]
    conn = next(connection(conn_id) for conn_id in connection_ids() if connection(conn_id).get("host") == service)
    assert (conn["login"], conn["password"], conn["schema"]) == \
        (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])


def test_run_data_is_in_the_bucket_the_file_makes(real_scheduler_settings):
    data_dir = urlsplit(AIRFLOW_ENV["MOODLE_SYNC_DATA_DIR"])
    tested = urlsplit(real_scheduler_settings["MOODLE_SYNC_DATA_DIR"])
    assert data_dir.scheme == "s3"
    assert (data_dir.scheme, data_dir.username) == (tested.scheme, tested.username)
    assert connection(data_dir.username)["conn_type"] == "aws"
    bucket_maker = SERVICES["object-store-bucket"]
    assert f"store/{data_dir.hostname} " in " ".join(bucket_maker["entrypoint"]) + " "
    assert all(service["depends_on"]["object-store-bucket"]["condition"] == "service_completed_successfully"
               for service in airflow_services().values())


def test_workers_are_celery_workers_sharing_no_disk_but_the_read_only_project():
    workers = [service for service in airflow_services().values() if command(service)[:2] == ["celery", "worker"]]
    assert workers
    assert sum(service.get("deploy", {}).get("replicas", 1) for service in workers) >= len(MACHINES)
    for service in airflow_services().values():
        assert service["volumes"] == [PROJECT_MOUNT]


def airflow_commands(service: dict) -> list[str]:
    """The Airflow commands a service runs: its command, or each ``airflow …`` of its bash script."""
    args = command(service)
    return re.findall(r"\bairflow ([a-z][a-z -]*[a-z])", args[2]) if args[0] == "bash" else [" ".join(args)]


def test_the_airflow_services_run_every_component_with_commands_airflow_has():
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    run = [name for service in airflow_services().values() for name in airflow_commands(service)]
    assert {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"} <= set(run)
    for name in run:
        parser.parse_args(name.split())  # argparse exits on a command this Airflow does not have


def test_airflow_init_migrates_then_makes_the_pools_and_every_component_waits_for_it():
    init = command(SERVICES["airflow-init"])[2]
    assert init.index("airflow db migrate") < init.index("/opt/project/scripts/create_pools.py")
    assert in_project("/opt/project/scripts/create_pools.py").is_file()
    for name, service in airflow_services().items():
        if name != "airflow-init":
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name


def settings_of_every_service() -> dict[str, str]:
    found = {f"x-airflow-common {key}": value for key, value in AIRFLOW_ENV.items()}
    for name, service in SERVICES.items():
        found |= {f"{name} {key}": value for key, value in service.get("environment", {}).items()}
    return found


def test_no_secret_is_written_in_the_file():
    for where, value in settings_of_every_service().items():
        key = where.split()[-1]
        if key.startswith("AIRFLOW_CONN_"):
            assert VARIABLE.fullmatch(json.loads(value)["password"]), where
        elif "://" in str(value):
            password = urlsplit(str(value)).password
            assert password is None or VARIABLE.fullmatch(password), where
        elif SECRET_SETTING.search(key) and not key.endswith("_FILE"):
            assert VARIABLE.fullmatch(str(value)), f"{where} holds a literal"


def test_every_variable_the_file_reads_is_in_env_example_without_a_value():
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))
    assert not {name: value for name, value in example.items() if value}
    used = set(VARIABLE.findall((ROOT / "docker-compose.yaml").read_text(encoding="utf-8")))
    assert used == set(example), f"missing from .env.example: {sorted(used - set(example))}; " \
                                 f"unused: {sorted(set(example) - used)}"

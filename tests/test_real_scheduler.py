"""The demo integration on Airflow's real scheduler with the CeleryExecutor and two workers as two "machines".

The test starts, on this machine: a metadata database of its own on the PostgreSQL at 127.0.0.1:5432, a Redis
database number of its own at 127.0.0.1:6379 (the Celery broker), an S3 server (moto's) on 127.0.0.1 for the
run data, the Moodle stand-in behind a fault-injecting proxy, and Airflow's api-server, scheduler and
dag-processor; then two Celery workers, each a process with a home folder of its own and a host name of its
own, which share nothing but the object store and the databases. The Airflow pool the demo integration names for
its results reads is made by scripts/create_pools.py from the integration file. Everything it started is stopped,
and what it created dropped, however the test ends.

Through Airflow's REST API it triggers the demo integration twice at once while Moodle's database refuses every
write: the first run's apply stops (a site problem, nothing quarantined). The site is fixed, but now every
``core_user_create_users`` answer is lost after Moodle did the work (the connection resets); the failed task is
cleared through the REST API, and both runs converge. Checked: both workers ran tasks, the two runs never ran at
the same time (``max_active_runs=1``), no Moodle user was created twice (the users whose creation answer was lost
are read back and adopted), and the run data is in the object store only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import redis
import requests
import yaml
from fault_proxy import FaultProxy
from object_store import LocalObjectStore, free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from moodle_stand_in import MoodleStandIn
from moodle_stand_in.demo_site import add_demo_courses
from psiber.demo_company import HAND_MADE_MOODLE_USER, seed_demo_company

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
POSTGRES_URL = os.environ.get("PSIBER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_DB = 11  # this test's own Redis database number, flushed before and after
DAG_ID = "psiber_moodle_driver_training"
INTEGRATIONS = ROOT / "include" / "integrations"
POOL = yaml.safe_load((INTEGRATIONS / "demo.yaml").read_text(encoding="utf-8"))["results"]["moodle_pool"]
BUCKET = "psiber-runs"
MACHINES = ("machine-a", "machine-b")
FINISHED = {"success", "failed"}


def wait_for(what: str, check: Callable[[], object], seconds: float, every: float = 2.0):
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


class Processes:
    """Airflow's processes, each in a session of its own: stopping one stops every process it started."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict, cwd: Path) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.started[name] = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> None:
        dead = {name: process.returncode for name, process in self.started.items() if process.poll() is not None}
        if dead:
            pytest.fail(f"Airflow processes stopped: {dead}\n{self.tails()}")

    def stop(self) -> None:
        """SIGTERM to every process group and every descendant, then SIGKILL to whatever is left."""
        family: list[psutil.Process] = []
        for process in self.started.values():
            try:
                parent = psutil.Process(process.pid)
                family += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for process in self.started.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _, alive = psutil.wait_procs(family, timeout=20)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for process in self.started.values():
            process.wait(timeout=10)

    def tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in sorted(self.logs.glob("*.log")))


@pytest.fixture
def databases():
    """A metadata database and a PSIber database of this test's own, dropped at the end."""
    server = make_url(POSTGRES_URL)
    names = {role: f"psiber_rs_{role}_{secrets.token_hex(4)}" for role in ("airflow", "psiber")}
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {role: server.set(database=name) for role, name in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def broker():
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


class Api:
    """Airflow's REST API (v2) as the simple auth manager's admin."""

    def __init__(self, base: str, password: str):
        self.base, self.password = base, password
        self.session = requests.Session()

    def login(self) -> bool:
        try:
            answer = requests.post(f"{self.base}/auth/token", json={"username": "admin", "password": self.password},
                                   timeout=10)
        except requests.ConnectionError:
            return False
        if answer.status_code != 201:
            return False
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return True

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(f"{self.base}/api/v2/{path}", params=params, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        answer = self.session.post(f"{self.base}/api/v2/{path}", json=body, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def runs(self) -> dict[str, dict]:
        answer = self.get(f"dags/{DAG_ID}/dagRuns", limit=50)
        answer.raise_for_status()
        return {run["dag_run_id"]: run for run in answer.json()["dag_runs"]}

    def task_instances(self, run_id: str) -> list[dict]:
        answer = self.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=500)
        answer.raise_for_status()
        return answer.json()["task_instances"]


def airflow_environment(tmp_path: Path, databases: dict, broker: str, store: LocalObjectStore, moodle_url: str,
                        token: str, api_port: int) -> dict[str, str]:
    psiber = databases["psiber"]
    metadata = databases["airflow"].render_as_string(hide_password=False)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
    api = f"http://127.0.0.1:{api_port}"
    return {
        **{key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "PSIBER_MOODLE", "MOODLE_SYNC"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(tmp_path / "lib"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs the test triggers
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PSIBER_MOODLE_INTEGRATIONS": str(INTEGRATIONS),
        "MOODLE_SYNC_DATA_DIR": f"s3://runs_store@{BUCKET}/runs",
        "MOODLE_SYNC_TASK_RETRIES": "0",  # a fault fails its task at once; the test clears it
        "AIRFLOW_CONN_RUNS_STORE": store.connection(),
        "AIRFLOW_CONN_MOODLE_DEMO": json.dumps({"conn_type": "moodle", "host": moodle_url, "password": token}),
        "AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD": json.dumps({"conn_type": "generic", "password": "Initial-Pa55!"}),
        "AIRFLOW_CONN_PSIBER_DEMO": json.dumps({
            "conn_type": "postgres", "host": psiber.host, "port": psiber.port, "login": psiber.username,
            "password": psiber.password, "schema": psiber.database}),
    }


def test_the_demo_runs_on_the_real_scheduler_with_two_celery_workers(tmp_path, databases, broker):
    engine = create_engine(databases["psiber"])
    seed_demo_company(engine, employees=40)
    token = secrets.token_hex(16)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "machine.py").write_text(  # each worker names itself in its task instances
        "import os\n\n\ndef name():\n    return os.environ['PSIBER_TEST_MACHINE']\n")
    processes = Processes(tmp_path)
    with LocalObjectStore(BUCKET) as store, MoodleStandIn(token) as moodle, \
            FaultProxy(moodle.base_url, kinds=("reset",), functions={"core_user_create_users"}) as proxy:
        moodle.add_user(**HAND_MADE_MOODLE_USER)
        add_demo_courses(moodle, int(time.time()) - 30 * 86_400)
        api_port = free_port()
        env = airflow_environment(tmp_path, databases, broker, store, proxy.base_url, token, api_port)
        control = tmp_path / "control"
        control.mkdir()
        subprocess.run([AIRFLOW, "db", "migrate"], env={**env, "AIRFLOW_HOME": str(control)}, cwd=control,
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        pools = subprocess.run([sys.executable, str(ROOT / "scripts" / "create_pools.py")], cwd=control,
                               env={**env, "AIRFLOW_HOME": str(control)}, check=True, capture_output=True,
                               text=True, timeout=120)
        assert f"pool {POOL}: 4 slots" in pools.stdout
        try:
            for name in ("api-server", "scheduler", "dag-processor"):
                processes.start(name, [AIRFLOW, *name.split()], {**env, "AIRFLOW_HOME": str(control)}, control)
            for machine in MACHINES:
                home = tmp_path / machine
                home.mkdir()
                processes.start(machine, [AIRFLOW, "celery", "worker", "--concurrency", "2", "--skip-serve-logs",
                                          "--without-gossip", "--without-mingle", "--celery-hostname",
                                          f"{machine}@%h"],
                                {**env, "AIRFLOW_HOME": str(home), "PSIBER_TEST_MACHINE": machine,
                                 "AIRFLOW__CORE__HOSTNAME_CALLABLE": "machine.name"}, home)
            api = Api(f"http://127.0.0.1:{api_port}", json.loads((tmp_path / "passwords.json").read_text())["admin"])
            wait_for("the API server", lambda: processes.alive() or api.login(), 180)
            wait_for("the DAG to be parsed", lambda: processes.alive() or api.get(f"dags/{DAG_ID}").ok, 240)
            assert api.get(f"pools/{POOL}").json()["slots"] == 4

            moodle.database_refuses_writes = True  # every write fails: the apply stops, a site problem
            first, second = (api.post(f"dags/{DAG_ID}/dagRuns", {"logical_date": None})["dag_run_id"]
                             for _ in range(2))
            most_running = 0

            def apply_state(run_id: str) -> str | None:
                nonlocal most_running
                processes.alive()
                most_running = max(most_running, sum(run["state"] == "running" for run in api.runs().values()))
                answer = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/apply_user_changes")
                return answer.json()["state"] if answer.ok else None

            wait_for("the first run's apply to fail", lambda: apply_state(first) == "failed", 420)
            assert not any(u.get("idnumber") for u in moodle.users.values())  # nothing written
            moodle.database_refuses_writes = False
            proxy.rate = 1.0  # every user creation from now on: Moodle creates, then the connection resets
            api.post(f"dags/{DAG_ID}/clearTaskInstances", {
                "dry_run": False, "dag_run_id": first, "task_ids": ["apply_user_changes"], "only_failed": True,
                "include_downstream": True, "reset_dag_runs": True})

            def both_finished() -> bool:
                apply_state(first)
                runs = api.runs()
                return all(runs[run_id]["state"] in FINISHED for run_id in (first, second))

            wait_for("both runs to finish", both_finished, 600)
            runs = api.runs()
            assert {run_id: runs[run_id]["state"] for run_id in (first, second)} == \
                {first: "success", second: "success"}
            instances = {run_id: api.task_instances(run_id) for run_id in (first, second)}
        finally:
            print(processes.tails())  # shown when the test fails
            processes.stop()

        assert most_running == 1
        assert not overlapping(instances[first], instances[second]), "the two runs ran at the same time"
        ran_on = {ti["hostname"] for tis in instances.values() for ti in tis if ti["state"] == "success"}
        assert ran_on == set(MACHINES)
        assert proxy.faults()  # creations answered by a reset, read back and adopted
        reads = [ti for ti in instances[first] if ti["task_id"] in ("read_course_grades", "read_completions")]
        assert reads and {ti["pool"] for ti in reads} == {POOL}

        accounts = [user for user in moodle.users.values() if user.get("idnumber")]
        assert len({user["idnumber"] for user in accounts}) == len(accounts)  # no employee has two accounts
        with engine.connect() as connection:
            links = connection.execute(text("SELECT COUNT(*) FROM moodle_user_link")).scalar_one()
        assert links == len(accounts)  # every account the runs made is linked, once
        summaries = {run_id: json.loads(store.client().get_object(
            Bucket=BUCKET, Key=f"runs/driver_training/{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}/summary.json",
        )["Body"].read())
            for run_id in (first, second)}
        assert summaries[first]["counts"]["users"]["adopted"] > 0  # what the failed call created, taken over
        assert summaries[second]["counts"]["users"]["created"] == 0
        assert not [path for machine in MACHINES for path in (tmp_path / machine).rglob("*.json")
                    if "moodle_sync_runs" in str(path)]  # run data only in the object store
    engine.dispose()


def overlapping(one: list[dict], other: list[dict]) -> bool:
    def spans(instances):
        return [(datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
                for ti in instances if ti["start_date"] and ti["end_date"]]

    return any(a_start < b_end and b_start < a_end for a_start, a_end in spans(one) for b_start, b_end in spans(other))

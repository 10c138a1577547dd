"""The demo where support works: the Moodle stand-ins and Airflow on this machine, runs made by the scheduler.

Starts the Moodle stand-in, the demo school's own Moodle stand-in and Airflow's API server (with the UI),
scheduler, DAG processor and triggerer, sized for a 2-core machine, with the demo's Connections in
Airflow's metadata database and the pools the integration files name (scripts/create_pools.py).
Users: with FAB's auth manager (the default) an administrator and a support user who may read the
two demo integrations only (the README's recipe); with ``--simple-auth`` Airflow's simple auth manager.
The first start lets the scheduler's run create the Moodle users, lets the learners study, runs
the next night's sync, and makes one run that fails while Moodle is unreachable, for support to
clear and see converge; meanwhile the demo school (Greenfield High) is previewed, then provisioned.
Every run is the scheduler's, so every task has its log in the UI.
State lives in .demo/airflow-ui/ (``--reset`` starts again). Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DAG_ID = "psiber_moodle_driver_training"
SCHOOL_DAG_ID = "school_moodle_greenfield_high"
SCHOOL_FILE = ROOT / "include" / "integrations" / "school" / "greenfield_high.yaml"
PSIBER_FILE = ROOT / "include" / "integrations" / "demo.yaml"
# Who the demo's integrations tell (README, Notifications); the demo's mailbox keeps every message (home/mail).
NOTIFICATIONS = {"smtp_conn_id": "smtp_demo", "failed_runs": ["it-support@demo.example"],
                 "problems_by_owner": {"PSIber HR": ["hr@demo.example"],
                                       "Moodle administrator": ["moodle-admin@demo.example"],
                                       "school MIS administrator": ["mis-office@demo.example"]}}
SCHOOL_MOODLE_CONN_ID = "moodle_school_demo"  # the school's own Moodle stand-in (its categories, its users)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# The support role of the README's recipe: the demo integrations' DAGs only (their runs and task logs, triggering
# a run, clearing a run or a failed task; never deleting), plus "Plugins" (without it Airflow shows no plugin tab)
# and "HITL Detail" (the DAG list). FAB asks can_edit on DAG:<dag_id> of every change to a run or task instance.
SUPPORT_PERMISSIONS = (
    ((f"DAG:{DAG_ID}", f"DAG:{SCHOOL_DAG_ID}"), ("can_read", "can_edit")),
    (("DAG Runs",), ("can_read", "can_create", "can_edit")),
    (("Task Instances",), ("can_read", "can_edit")),
    (("Task Logs", "Plugins", "HITL Detail"), ("can_read",)),
)
FINISHED = ("success", "failed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoAirflow:
    """Airflow's components for one home directory; the browser test starts one of its own."""

    def __init__(self, home: Path, port: int, moodle_port: int, school_moodle_port: int, parallelism: int = 4,
                 fab: bool = True):
        self.home, self.port, self.moodle_port, self.fab = home, port, moodle_port, fab
        self.school_moodle_port = school_moodle_port
        self.url = f"http://localhost:{port}"
        self.parallelism = parallelism
        self.processes: dict[str, subprocess.Popen] = {}
        self.moodle = self.school_moodle = self.mailbox = None
        self.smtp_port = free_port()

    # -- configuration

    def secrets(self) -> dict:
        """Per-demo keys (JWT signing, Connection encryption, the admin's password), kept out of the repository."""
        path = self.home / "demo-secrets.json"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.write_text(json.dumps({"jwt_secret": secrets.token_urlsafe(64),
                                        "fernet_key": Fernet.generate_key().decode(),
                                        "admin_password": secrets.token_urlsafe(12),
                                        "support_password": secrets.token_urlsafe(12),
                                        "moodle_token": secrets.token_hex(16)}))
            path.chmod(0o600)
        return json.loads(path.read_text())

    def settings(self) -> dict[str, str]:
        """The demo's settings as environment variables: Airflow's (home, metadata database, keys, auth manager,
        API) and the integrations' (their folders, run data, retries)."""
        keys = self.secrets()
        airflow = self.home / "airflow"
        passwords = airflow / "simple_auth_manager_passwords.json.generated"
        airflow.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({"admin": keys["admin_password"]}))
        passwords.chmod(0o600)
        return {
            "AIRFLOW_HOME": str(airflow),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),  # each slot is a forked worker: 2 cores here
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the Moodle Connection form's Test button
            **({"AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER} if self.fab else {}),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A worker's calls to the API server wait 30 s, not 5: on 2 busy cores the first runs' tasks, started
            # together, timed out (httpx.ReadTimeout) at their start and failed the demo's scheduled run.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "MOODLE_SYNC_DATA_DIR": str(self.home / "runs"),
            "PSIBER_MOODLE_INTEGRATIONS": str(self.home / "psiber_integrations"),
            # The mail server's Connection (no secret in it) in the environment, not the metadata database: the
            # DAG callbacks of `airflow dags test` read Connections from the environment only.
            "AIRFLOW_CONN_SMTP_DEMO": json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.smtp_port,
                                                  "extra": {"disable_ssl": True, "disable_tls": True,
                                                            "from_email": "moodle-sync@demo.example"}}),
            "SCHOOL_MOODLE_INTEGRATIONS": str(self.home / "school_integrations"),
            "MOODLE_SYNC_TASK_RETRIES": "0",  # a failure shows at once; support clears the task
        }

    def environment(self) -> dict:
        """What the components and the CLI calls made here run with: the demo's settings, the venv's ``bin`` first
        on PATH (the components start ``airflow`` from it), the log servers on free ports."""
        return {**os.environ, **self.settings(), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}

    def write_cli_settings(self) -> Path:
        """``airflow.env``: ``source`` it and Airflow's CLI (``airflow dags list``, ``tasks test``, ``dags test``)
        works on this demo, its metadata database and Connections. It holds the demo's keys: owner-only."""
        path = self.home / "airflow.env"
        path.touch(mode=0o600)
        path.chmod(0o600)
        lines = ["# Airflow's CLI on the demo: source this file (see README, 'Airflow's CLI on the demo').",
                 f'export PATH={shlex.quote(str(VENV_BIN))}:"$PATH"',
                 *(f"export {name}={shlex.quote(value)}" for name, value in self.settings().items())]
        path.write_text("\n".join(lines) + "\n")
        return path

    def airflow(self, *args: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.environment(), check=True,
                              capture_output=True, text=True, **options)

    # -- the Moodle stand-ins, the PSIber database and the school MIS

    def start_moodle(self) -> bool:
        """Start the stand-ins on their ports; returns True the first time (courses just set up)."""
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        from sqlalchemy import create_engine

        from moodle_stand_in import MoodleStandIn
        from moodle_stand_in.demo_site import add_demo_courses
        from psiber.demo_company import HAND_MADE_MOODLE_USER, seed_demo_company

        self.start_school()
        self.integration_file(PSIBER_FILE, "psiber_integrations")
        seed_demo_company(create_engine(f"sqlite:///{self.home / 'psiber.db'}"))
        self.moodle = MoodleStandIn(self.secrets()["moodle_token"], state_path=self.home / "moodle-stand-in.json",
                                    port=self.moodle_port).start()
        first_time = not self.moodle.courses or not any(
            course["shortname"] == "DRV-101" for course in self.moodle.courses.values())
        if first_time:
            self.moodle.add_user(**HAND_MADE_MOODLE_USER)
            add_demo_courses(self.moodle, start=int(time.time()) - 60 * 86_400)
        return first_time

    def start_school(self) -> None:
        """The demo school's MIS, its own Moodle stand-in (set up as its administrator did, the first time) and
        its integration file, whose Moodle Connection names that stand-in."""
        from sqlalchemy import create_engine

        from moodle_stand_in import MoodleStandIn
        from school.demo_school import seed_demo_school, set_up_moodle

        seed_demo_school(create_engine(f"sqlite:///{self.home / 'school.db'}"))
        self.school_moodle = MoodleStandIn(self.secrets()["moodle_token"], port=self.school_moodle_port,
                                           state_path=self.home / "moodle-school-stand-in.json").start()
        service_user = next((user for user in self.school_moodle.users.values() if user["username"] == "schoolws"),
                            None)
        if service_user is None:
            set_up_moodle(self.school_moodle)
        else:
            self.school_moodle.set_token_user(service_user["id"])
        self.integration_file(SCHOOL_FILE, "school_integrations", moodle_conn_id=SCHOOL_MOODLE_CONN_ID)

    def integration_file(self, source: Path, folder: str, **changes) -> None:
        """The demo's copy of an integration file, telling the demo's mailbox (``NOTIFICATIONS``)."""
        import yaml

        settings = {**yaml.safe_load(source.read_text(encoding="utf-8")), **changes, "notifications": NOTIFICATIONS}
        (self.home / folder).mkdir(exist_ok=True)
        (self.home / folder / source.name).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")

    def start_mailbox(self) -> None:
        """The demo's mail server (127.0.0.1, a free port): every notification lands in .demo/airflow-ui/mail."""
        from demo_mailbox import start_mailbox

        self.mailbox = start_mailbox(self.smtp_port, self.home / "mail")

    def course_ids(self) -> dict[str, int]:
        return {course["shortname"]: course_id for course_id, course in self.moodle.courses.items()}

    def connections(self) -> None:
        """The demo's Connections in Airflow's metadata database, where the scheduler's workers find them."""
        wanted = {
            "moodle_demo": {"conn_type": "moodle", "host": f"http://127.0.0.1:{self.moodle_port}",
                            "password": self.secrets()["moodle_token"]},
            "psiber_demo": {"conn_type": "sqlite", "host": str(self.home / "psiber.db")},
            SCHOOL_MOODLE_CONN_ID: {"conn_type": "moodle", "host": f"http://127.0.0.1:{self.school_moodle_port}",
                                    "password": self.secrets()["moodle_token"]},
            "school_demo": {"conn_type": "sqlite", "host": str(self.home / "school.db")},
            "hr_file_demo": {"conn_type": "sqlite", "host": str(self.home / "hr_file.db")},  # the HR export's state
            "moodle_demo_initial_password": {"conn_type": "generic",
                                             "password": f"Demo-{self.secrets()['jwt_secret'][:10]}1!"},
        }
        staged = self.home / "connections.json"  # secrets: owner-only, deleted once imported
        staged.touch(mode=0o600)
        staged.write_text(json.dumps(wanted))
        try:
            self.airflow("connections", "import", "--overwrite", str(staged))
        finally:
            staged.unlink()

    def fab_user(self, user: str, role: str) -> None:
        # "--password=…" in one word: a generated password may begin with "-", which argparse takes for an option.
        self.airflow("users", "create", "--username", user, f"--password={self.secrets()[f'{user}_password']}",
                     "--role", role, "--firstname", user.title(), "--lastname", "Demo",
                     "--email", f"{user}@example.com")

    def fab_support_user(self, timeout: float = 180) -> None:
        """A support user who may read, trigger and clear the demo integrations only (once the DAGs exist:
        permissions are per DAG); a role made by an earlier start gets what the recipe added since."""
        made = "Support" in self.airflow("roles", "list").stdout
        if not made:
            self.wait_for_dags(timeout)
            self.airflow("sync-perm", "--include-dags")
            self.airflow("roles", "create", "Support")
        for resources, actions in SUPPORT_PERMISSIONS:
            self.airflow("roles", "add-perms", "Support", "-r", *resources, "-a", *actions)
        if not made:
            self.fab_user("support", "Support")

    def dag_known(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/dags/{dag_id}")
        except Exception:  # noqa: BLE001 - not parsed yet
            return False
        return True

    def wait_for_dags(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.dag_known(dag_id) for dag_id in (DAG_ID, SCHOOL_DAG_ID)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the DAG processor did not list {DAG_ID} and {SCHOOL_DAG_ID} within {timeout} s")
            time.sleep(2)

    # -- Airflow

    def start(self) -> None:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.start_mailbox()
        chosen, recorded = ("fab" if self.fab else "simple"), self.home / "auth-manager"
        if recorded.exists() and recorded.read_text() != chosen:
            raise SystemExit(f"This demo was set up with the {recorded.read_text()} auth manager: add --reset to "
                             f"start again with the {chosen} one.")
        if not (self.home / "airflow" / "airflow.db").exists():
            self.airflow("db", "migrate")
            if self.fab:
                self.fab_user("admin", "Admin")
            recorded.write_text(chosen)
        self.connections()
        self.write_cli_settings()
        subprocess.run([sys.executable, str(ROOT / "scripts" / "create_pools.py")], env=self.environment(),
                       check=True, capture_output=True, text=True)
        for component in COMPONENTS:
            output = (logs / f"{component}.log").open("ab")
            self.processes[component] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), component], env=self.environment(), stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
            if component == "api-server":  # first: a task that starts before it listens fails (connection refused)
                self.wait_until_ready()
        if self.fab:
            self.fab_support_user()

    def wait_until_ready(self, timeout: float = 180) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for component, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {component} stopped; see {self.home / 'logs' / component}.log")
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok:
                    return
            except requests.RequestException:  # not listening yet, or still starting
                pass
            time.sleep(1)
        raise TimeoutError(f"Airflow's API server did not answer at {self.url} within {timeout} s")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()
        for server in (self.moodle, self.school_moodle, self.mailbox):
            if server is not None:
                server.stop()

    def memory_mib(self) -> tuple[float, float]:
        """(RSS, PSS) in MiB of Airflow's components and every process they started (workers, log servers).

        RSS counts the pages forked workers share with their parent once per process; PSS shares them out,
        so it is what the machine actually spends.
        """
        import psutil

        rss = pss = 0
        for process in self.processes.values():
            try:
                root = psutil.Process(process.pid)
                for member in [root, *root.children(recursive=True)]:
                    memory = member.memory_full_info()
                    rss, pss = rss + memory.rss, pss + memory.pss
            except psutil.NoSuchProcess:
                continue
        return rss / 2**20, pss / 2**20

    # -- runs

    def token(self) -> str:
        import requests

        answer = requests.post(f"{self.url}/auth/token", timeout=10,
                               json={"username": "admin", "password": self.secrets()["admin_password"]})
        answer.raise_for_status()
        return answer.json()["access_token"]

    def api(self, method: str, path: str, **options):
        import requests

        answer = requests.request(method, f"{self.url}/api/v2{path}", timeout=30,
                                  headers={"Authorization": f"Bearer {self.token()}"}, **options)
        answer.raise_for_status()
        return answer.json()

    def runs(self, dag_id: str = DAG_ID) -> list[dict]:
        try:
            return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after"})["dag_runs"]
        except Exception:  # noqa: BLE001 - the DAG is not parsed yet
            return []

    def wait_for_runs(self, count: int, dag_id: str = DAG_ID, timeout: float = 900) -> list[dict]:
        """Until at least ``count`` runs of the DAG exist and all have finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            if len(runs) >= count and all(run["state"] in FINISHED for run in runs):
                return runs
            time.sleep(3)
        raise TimeoutError(f"the runs of {dag_id} did not finish within {timeout} s")

    def trigger(self, note: str, dag_id: str = DAG_ID, conf: dict | None = None) -> str:
        """A manual run (Airflow names it); returns its run id."""
        answer = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "note": note,
                                                                   "conf": conf or {}})
        return answer["dag_run_id"]


def tour(demo: DemoAirflow, first_time: bool) -> list[dict]:
    """The runs a first start shows: created users, a night of learning, a run that fails while Moodle is down."""
    from moodle_stand_in.demo_site import simulate_learning

    print("Waiting for the scheduler's first run of the demo DAG (about a minute) ...", flush=True)
    runs = demo.wait_for_runs(1)
    if not first_time:
        return runs
    demo.wait_for_dags()
    demo.trigger("The rollover guide's preview: what the first run would do, nothing written", SCHOOL_DAG_ID,
                 {"preview": True})
    demo.trigger("The demo school's first provisioning", SCHOOL_DAG_ID)
    print("The demo school is previewed, then provisioned, meanwhile.", flush=True)
    enrolments = simulate_learning(demo.moodle, demo.course_ids(), now=int(time.time()))
    print(f"Learners studied in Moodle: {enrolments} enrolments. The next night's run ...", flush=True)
    demo.trigger("The night after the learners studied")
    demo.wait_for_runs(2)
    print("Moodle goes offline for one run ...", flush=True)
    demo.moodle.stop()
    demo.trigger("Moodle was unreachable: clear check_moodle_site (with its downstream tasks) to run it again")
    runs = demo.wait_for_runs(3)
    demo.moodle.start()
    print("Moodle is back online.", flush=True)
    demo.wait_for_runs(2, SCHOOL_DAG_ID)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="the Airflow UI's port (default 8080)")
    parser.add_argument("--moodle-port", type=int, default=8091, help="the Moodle stand-in's port (default 8091)")
    parser.add_argument("--school-moodle-port", type=int, default=8092,
                        help="the demo school's Moodle stand-in's port (default 8092)")
    parser.add_argument("--reset", action="store_true",
                        help="forget the demo's Airflow runs, Moodle sites, PSIber and school MIS")
    parser.add_argument("--simple-auth", action="store_true",
                        help="Airflow's simple auth manager (one admin; it cannot restrict a user to some DAGs) "
                             "instead of FAB's with an admin and a support user (choose on a first start or --reset)")
    args = parser.parse_args()
    home = ROOT / ".demo" / "airflow-ui"
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: Airflow stops with it
    if args.reset:
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    demo = DemoAirflow(home, args.port, args.moodle_port, args.school_moodle_port, fab=not args.simple_auth)
    try:
        first_time = demo.start_moodle()
        print(f"Moodle stand-ins on http://127.0.0.1:{args.moodle_port} and (the school's) "
              f"http://127.0.0.1:{args.school_moodle_port}; starting Airflow ...", flush=True)
        demo.start()
        print(f"Airflow is up at {demo.url}", flush=True)
        tour(demo, first_time)
        rss, pss = demo.memory_mib()
        logins = f"admin with password {demo.secrets()['admin_password']}"
        if demo.fab:
            logins += (f", or support (the two demo integrations only) with password "
                       f"{demo.secrets()['support_password']}")
        print(f"\nOpen {demo.url} and log in as {logins}\n"
              f"  DAG {DAG_ID}: the tabs 'Sync runs' and 'Course status'; a run's 'Sync report' tab.\n"
              f"  'Trigger' runs the sync again; a failed task: Clear (with downstream) and watch the run converge.\n"
              f"  DAG {SCHOOL_DAG_ID}: 'Sync runs' shows the preview and the first provisioning; 'Trigger' with\n"
              f"  preview on lists what the next run would do, deletions first. 'Sync reports' in the menu: both.\n"
              f"  Airflow's memory (all components and workers): {rss:.0f} MiB RSS, {pss:.0f} MiB PSS\n"
              f"  Notifications (failed runs, each owner's problem records): {len(list((home / 'mail').glob('*.eml')))}"
              f" e-mails so far, each as .html in {home / 'mail'}\n"
              f"  Airflow's CLI on this demo: source {home / 'airflow.env'} (README: what harms the demo's runs).\n"
              f"  Component logs: {home / 'logs'}. Ctrl-C stops Airflow and the Moodle stand-ins.", flush=True)
        while all(process.poll() is None for process in demo.processes.values()):
            time.sleep(2)
        print("An Airflow component stopped; see its log in", home / "logs")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())

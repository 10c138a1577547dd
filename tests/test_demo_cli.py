"""Airflow's CLI on the demo (scripts/demo_airflow.py), from a shell that sources the demo's airflow.env and has
nothing else of the demo: its metadata database, its Connections (encrypted with its Fernet key), its DAGs.

The demo is set up as a first start sets it up (Moodle stand-ins, PSIber and school databases, its mailbox,
``db migrate``, Connections, the CLI settings), with ``airflow dags reserialize`` standing in for its DAG processor;
no scheduler runs. A ``dags test`` whose first task fails ends, and one waiting for a retry stops on SIGTERM.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from demo_airflow import DAG_ID, SCHOOL_DAG_ID, DemoAirflow, free_port  # noqa: E402 - a script, not a package
from demo_mailbox import html_part  # noqa: E402

GENEROUS = 600  # seconds: a bound for a CLI command on a busy 2-core machine, never a measure of it
BARE_SHELL = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    demo = DemoAirflow(tmp_path_factory.mktemp("demo"), port=free_port(), moodle_port=free_port(),
                       school_moodle_port=free_port())
    demo.start_moodle()
    demo.start_mailbox()
    demo.airflow("db", "migrate", timeout=GENEROUS)
    demo.connections()
    settings = demo.write_cli_settings()
    demo.airflow("dags", "reserialize", timeout=GENEROUS)
    yield demo, settings
    demo.stop()


def shell(settings: Path, command: str) -> str:
    """``source airflow.env && <command>`` in a shell with no other setting; ``exec``, so signals reach it."""
    return f"source {shlex.quote(str(settings))} && exec {command}"


def cli(settings: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", shell(settings, command)], env=BARE_SHELL, capture_output=True, text=True,
                          timeout=GENEROUS)


def run_ids(settings: Path) -> list[str]:
    listed = cli(settings, f"airflow dags list-runs {DAG_ID} -o plain")
    assert listed.returncode == 0, listed.stderr
    return [line.split()[1] for line in listed.stdout.splitlines()[1:] if line.strip()]


def test_the_settings_file_is_the_demos_own_and_owner_only(demo):
    _, settings = demo
    assert settings.stat().st_mode & 0o077 == 0
    assert "AIRFLOW__CORE__FERNET_KEY=" in settings.read_text() and "AIRFLOW_HOME=" in settings.read_text()


def test_dags_list_and_tasks_test_work_on_the_demo_with_its_connections(demo):
    _, settings = demo
    listed = cli(settings, "airflow dags list -o plain")
    assert listed.returncode == 0, listed.stderr
    assert DAG_ID in listed.stdout and SCHOOL_DAG_ID in listed.stdout
    tested = cli(settings, f"airflow tasks test {DAG_ID} check_moodle_site 2030-01-01")
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "Moodle site 'Moodle stand-in'" in tested.stdout + tested.stderr  # the demo's Moodle Connection


def test_tasks_test_without_a_date_deletes_a_run_without_one_and_with_a_date_none(demo):
    """What README says harms the demo's runs: Airflow 3.3's ``tasks test`` makes its temporary run with
    ``get_or_create_dagrun``, which first deletes the DAG's run of the same logical date: none, here."""
    _, settings = demo
    triggered = cli(settings, f"airflow dags trigger {DAG_ID}")  # as the demo's runs: no logical date
    assert triggered.returncode == 0, triggered.stderr
    before = run_ids(settings)
    assert cli(settings, f"airflow tasks test {DAG_ID} check_moodle_site 2030-01-02").returncode == 0
    assert run_ids(settings) == before
    assert cli(settings, f"airflow tasks test {DAG_ID} check_moodle_site").returncode == 0
    assert len(run_ids(settings)) == len(before) - 1


def test_a_dags_test_whose_first_task_fails_ends_and_one_waiting_for_a_retry_stops_on_sigterm(demo, tmp_path):
    """The school's Moodle is down: check_moodle_site fails. With the demo's settings (no retries) the run ends
    failed, and the demo's mailbox hears of it; with retries, ``dags test`` waits for the retry ("No tasks to run")
    and SIGTERM ends it."""
    airflow, settings = demo
    airflow.school_moodle.stop()
    try:
        ended = cli(settings, f"airflow dags test {SCHOOL_DAG_ID}")
        assert ended.returncode == 1 and "DagRun failed" in ended.stdout + ended.stderr
        [(recipients, message)] = airflow.mailbox.handler.take()
        assert recipients == ("it-support@demo.example",) and "run failed" in message["Subject"]
        assert f"{airflow.url}/dags/{SCHOOL_DAG_ID}/runs/" in html_part(message)
        assert len(list((airflow.home / "mail").glob("*.html"))) == 1
        output = tmp_path / "dags-test.log"
        with output.open("w") as sink:
            waiting = subprocess.Popen(
                ["bash", "-c", shell(settings, f"env MOODLE_SYNC_TASK_RETRIES=2 "
                                               f"MOODLE_SYNC_TASK_RETRY_DELAY_SECONDS=3600 airflow dags test "
                                               f"{SCHOOL_DAG_ID}")],
                env=BARE_SHELL, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + GENEROUS
            while "No tasks to run" not in output.read_text(errors="replace"):
                assert waiting.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
                time.sleep(1)
            waiting.send_signal(signal.SIGTERM)
            assert waiting.wait(timeout=GENEROUS) == -signal.SIGTERM
        finally:
            if waiting.poll() is None:
                waiting.kill()
    finally:
        airflow.school_moodle.start()

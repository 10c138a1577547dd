"""Notifications of real runs: the demo integration's DAG run with dag.test(), its e-mails received by an SMTP
server on 127.0.0.1 (aiosmtpd), the link of each followed to the run's report.

A night with HR problems tells HR and the Moodle administrator their own records; a night whose Moodle is down
also tells IT support that it failed; the same callback delivered again sends nothing, a cleared run that fails
again is told again.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import yaml
from sqlalchemy import create_engine

from moodle_stand_in import MoodleStandIn
from psiber.demo_company import HAND_MADE_MOODLE_USER, seed_demo_company

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from demo_airflow import free_port  # noqa: E402 - scripts, not a package
from demo_mailbox import html_part, start_mailbox  # noqa: E402

DAG_ID = "psiber_moodle_driver_training"
BASE_URL = "https://airflow.example.com"
IT, HR, MOODLE = "it-support@example.com", "hr@example.com", "moodle-admin@example.com"
NOTIFICATIONS = {"smtp_conn_id": "smtp_sync", "failed_runs": [IT],
                 "problems_by_owner": {"PSIber HR": [HR], "Moodle administrator": [MOODLE]}}
_ADDRESS = re.compile(r"[\w.%+*-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.fixture
def night(airflow_db, tmp_path, monkeypatch):
    smtp = start_mailbox(free_port())
    mailbox = smtp.handler
    engine = create_engine(f"sqlite:///{tmp_path / 'psiber.db'}")
    seed_demo_company(engine, employees=120)
    token = secrets.token_hex(16)
    moodle = MoodleStandIn(token).start()
    moodle.add_user(**HAND_MADE_MOODLE_USER)
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    settings = yaml.safe_load((ROOT / "include" / "integrations" / "demo.yaml").read_text(encoding="utf-8"))
    (integrations / "demo.yaml").write_text(yaml.safe_dump({**settings, "notifications": NOTIFICATIONS}))
    secrets_used = {"token": token, "initial": "Initial-Pa55!"}
    for name, value in {
        "AIRFLOW_CONN_MOODLE_DEMO": {"conn_type": "http", "host": moodle.base_url, "password": token},
        "AIRFLOW_CONN_PSIBER_DEMO": {"conn_type": "sqlite", "host": str(tmp_path / "psiber.db")},
        "AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD": {"conn_type": "generic", "password": secrets_used["initial"]},
        "AIRFLOW_CONN_SMTP_SYNC": {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                                   "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10,
                                             "from_email": "airflow@example.com"}},
    }.items():
        monkeypatch.setenv(name, json.dumps(value))
    monkeypatch.setenv("MOODLE_SYNC_DATA_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PSIBER_MOODLE_INTEGRATIONS", str(integrations))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID]
    yield dag, moodle, mailbox, secrets_used
    moodle.stop()
    smtp.stop()


def link_in(text: str) -> str:
    [link] = set(re.findall(rf'href="({re.escape(BASE_URL)}[^"]+)"', text))
    return link


def report_page_behind(link: str) -> str:
    """The page Airflow's UI frames for the link: the plugin's tab of that url_route, its href filled in."""
    from fastapi.testclient import TestClient
    from moodle_sync_report import SyncReportPlugin

    from sync_common.integration_kinds import registered_kinds
    from sync_common.report_pages import URL_PREFIX, can_read_runs, report_app

    dag_id, run_id, route = re.fullmatch(r"/dags/([^/]+)/runs/([^/]+)/plugin/([^/]+)", urlsplit(link).path).groups()
    [view] = [view for view in SyncReportPlugin.external_views
              if view["destination"] == "dag_run" and view["url_route"] == route]
    href = view["href"].replace("{DAG_ID}", quote(unquote(dag_id), safe="")).replace(
        "{RUN_ID}", quote(unquote(run_id), safe=""))
    app = report_app(registered_kinds())
    app.dependency_overrides[can_read_runs.dependency] = lambda: None  # the login is Airflow's, tested elsewhere
    answer = TestClient(app).get(href.removeprefix(URL_PREFIX))
    assert answer.status_code == 200, answer.text
    return answer.text


def assert_nothing_secret(text: str, secrets_used: dict) -> None:
    assert not any(value in text for value in secrets_used.values())
    assert all("***@" in address for address in _ADDRESS.findall(text))  # every e-mail masked


def test_each_owner_hears_of_their_records_and_it_support_of_a_failed_run_once_per_try(night):
    dag, moodle, mailbox, secrets_used = night
    first = dag.test()
    assert str(first.state) == "success"
    received = mailbox.take()
    by_recipients = {recipients: message for recipients, message in received}
    assert sorted(by_recipients) == [(HR,), (MOODLE,)] and len(received) == 2  # nobody told of a failure
    hr = html_part(by_recipients[(HR,)])
    assert "EE00013" in hr and "EE00016" in hr and "e-mail address is malformed" in hr
    assert "EE00020" in html_part(by_recipients[(MOODLE,)])  # owned by "Moodle administrator / PSIber HR": both
    assert "EE00020" in hr
    assert by_recipients[(HR,)]["Subject"].startswith("Moodle sync Driver Training: ")
    for _, message in received:
        text = html_part(message)
        assert_nothing_secret(text, secrets_used)
        assert link_in(text) == f"{BASE_URL}/dags/{DAG_ID}/runs/{quote(first.run_id, safe='')}/plugin/sync-report"
    assert first.run_id in report_page_behind(link_in(hr))

    moodle.stop()  # the next night Moodle is down: check_moodle_site fails, HR's records are read all the same
    second = dag.test()
    assert str(second.state) == "failed"
    received = mailbox.take()
    by_recipients = {recipients: message for recipients, message in received}
    assert sorted(by_recipients) == [(HR,), (IT,)] and len(received) == 2
    failed = html_part(by_recipients[(IT,)])
    assert "run failed" in by_recipients[(IT,)]["Subject"] and "check_moodle_site: Moodle unreachable" in failed
    assert_nothing_secret(failed, secrets_used)
    page = report_page_behind(link_in(failed))
    assert second.run_id in page and first.run_id not in page

    context = {"dag": dag, "run_id": second.run_id, "dag_run": second}
    for notifier in dag.on_failure_callback:  # the same callback delivered a second time
        notifier(context)
    assert mailbox.take() == []
    second.clear_number = 1  # cleared, and failed again: a new try
    for notifier in dag.on_failure_callback:
        notifier(context)
    assert sorted(recipients for recipients, _ in mailbox.take()) == [(HR,), (IT,)]

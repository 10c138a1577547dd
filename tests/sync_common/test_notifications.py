"""Who is told what of a finished run (sync_common.notifications): the messages, once per run try, and the
``notifications`` block of both kinds' integration files. The e-mails of a real run: test_notifications_end_to_end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from pydantic import ValidationError

from factories import integration
from school.config import SchoolIntegration
from sync_common.notifications import (
    FAILED_RUN,
    LISTED_RECORDS,
    Message,
    NotificationSettings,
    SyncRunNotifier,
    report_link,
    run_callbacks,
    run_messages,
    sent_messages,
)
from tests.school.test_school_config import MINIMAL

RUN_ID = "scheduled__2026-11-20T00:00:00+00:00"
SETTINGS = NotificationSettings(smtp_conn_id="smtp_ops", failed_runs=("it-support@example.com",),
                                problems_by_owner={"PSIber HR": ("hr@example.com",),
                                                   "Moodle administrator": ("moodle@example.com",),
                                                   "school MIS administrator": ("mis@example.com",)})
LINK = report_link("https://airflow.example.com/", "psiber_moodle_driver_training", RUN_ID)


def outcome(record: str, action: str, reason: str, owner: str, flow: str = "users") -> dict:
    return {"record": record, "action": action, "reason": reason, "owner": owner, "flow": flow}


SUMMARY = {
    "run_id": RUN_ID, "failed_tasks": ["apply_user_changes"],
    "unfinished_tasks": ["apply_user_changes", "record_user_links", "summarize_run"],
    "failures": [{"task": "apply_user_changes", "error": "Moodle unreachable",
                  "detail": "cannot connect to https://moodle.example.com (ConnectionError)",
                  "owner": "Moodle administrator / IT (network)",
                  "next_step": "Clear apply_user_changes once the site answers again"}],
    "counts": {"users": {"created": 80, "updated": 0, "invalid": 2, "conflict": 1}, "courses": {"created": 0}},
    "outcomes": [
        outcome("EE00001", "created", "", ""),
        outcome("EE00013", "invalid", "e-mail address is malformed (Moodle would refuse it)", "PSIber HR"),
        outcome("EE00016", "invalid", "surname is missing", "PSIber HR"),
        outcome("EE00020", "conflict", "e-mail jane.doe@example.com already used by Moodle user #7",
                "Moodle administrator / PSIber HR"),
        outcome("field", "warning", "Moodle field 'x' has no match", "", "fields"),
    ],
}


def by_key(messages: list[Message]) -> dict[str, Message]:
    return {message.key: message for message in messages}


def test_a_failed_run_tells_its_failure_and_each_owner_their_own_records():
    messages = by_key(run_messages(SETTINGS, "Driver Training", RUN_ID, SUMMARY, failed=True, link=LINK))
    assert set(messages) == {FAILED_RUN, "owner PSIber HR", "owner Moodle administrator"}  # no MIS problems
    failed = messages[FAILED_RUN]
    assert failed.recipients == ("it-support@example.com",)
    text = " ".join(failed.paragraphs)
    assert "Failed tasks: apply_user_changes; 2 did not run because of them." in text
    assert ("apply_user_changes: Moodle unreachable (cannot connect to https://moodle.example.com (ConnectionError)) "
            "— owner: Moodle administrator / IT (network) — Clear apply_user_changes once the site answers again."
            in failed.paragraphs)
    assert "users: created 80, invalid 2, conflict 1" in text and "courses" not in text  # only what is not 0
    assert "4 problem records" in text and "1 invalid: surname is missing (owner: PSIber HR)" in text
    hr = messages["owner PSIber HR"]
    assert hr.recipients == ("hr@example.com",)
    assert [record.split(":")[1].strip() for record in hr.records] == ["EE00013", "EE00016", "EE00020"]
    assert "3 problem records for PSIber HR: invalid 2, conflict 1." in hr.paragraphs[0]
    assert [r.split(":")[1].strip() for r in messages["owner Moodle administrator"].records] == ["EE00020"]


def test_nothing_secret_and_no_whole_e_mail_in_a_message_and_every_value_escaped():
    summary = {**SUMMARY, "outcomes": [*SUMMARY["outcomes"],
                                       outcome("<b>EE9</b>", "failed", "<script>alert(1)</script>", "PSIber HR")]}
    messages = by_key(run_messages(SETTINGS, "Driver Training", RUN_ID, summary, failed=True, link=LINK))
    bodies = {key: message.html() for key, message in messages.items()}
    assert all("jane.doe@example.com" not in body and LINK in body for body in bodies.values())
    assert "j***@example.com" in bodies["owner PSIber HR"]
    assert "<script>" not in bodies["owner PSIber HR"] and "&lt;b&gt;EE9&lt;/b&gt;" in bodies["owner PSIber HR"]
    assert "&lt;script&gt;" in bodies[FAILED_RUN] and "<script>" not in bodies[FAILED_RUN]


def test_a_successful_run_tells_only_owners_and_a_run_without_problems_nobody():
    messages = run_messages(SETTINGS, "Driver Training", RUN_ID, SUMMARY, failed=False, link=LINK)
    assert FAILED_RUN not in by_key(messages) and len(messages) == 2
    clean = {**SUMMARY, "outcomes": [outcome("EE00001", "created", "", "")]}
    assert run_messages(SETTINGS, "Driver Training", RUN_ID, clean, failed=False, link=LINK) == []


def test_a_failed_run_without_a_summary_is_still_told_and_a_long_list_is_cut():
    [failed] = run_messages(SETTINGS, "Driver Training", RUN_ID, None, failed=True, link=LINK)
    assert "wrote no summary" in " ".join(failed.paragraphs)
    many = {**SUMMARY, "outcomes": [outcome(f"EE{n:05d}", "invalid", "surname is missing", "PSIber HR")
                                    for n in range(LISTED_RECORDS + 40)]}
    [hr] = run_messages(SETTINGS, "Driver Training", RUN_ID, many, failed=False, link=LINK)
    assert len(hr.records) == LISTED_RECORDS and f"has all {LISTED_RECORDS + 40}" in " ".join(hr.paragraphs)


def test_the_link_is_the_runs_sync_report_tab_in_airflows_ui():
    assert LINK == ("https://airflow.example.com/dags/psiber_moodle_driver_training/runs/"
                    "scheduled__2026-11-20T00%3A00%3A00%2B00%3A00/plugin/sync-report")
    from moodle_sync_report import SyncReportPlugin

    assert "sync-report" in {view["url_route"] for view in SyncReportPlugin.external_views
                             if view["destination"] == "dag_run"}


class Recording(SyncRunNotifier):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delivered: list[str] = []

    def deliver(self, message: Message, settings, context) -> None:
        self.delivered.append(message.key)


def test_each_message_goes_once_per_run_try(tmp_path):
    import json

    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    settings = SimpleNamespace(name="Driver Training", key="driver_training", data_dir=None, notifications=SETTINGS)
    notifier = Recording(settings, failed=True, run_dir=lambda _, run_id: tmp_path)
    context = {"dag": DAG("psiber_moodle_driver_training", schedule=None), "run_id": RUN_ID,
               "dag_run": SimpleNamespace(clear_number=0)}
    notifier(context)
    assert len(notifier.delivered) == 3
    notifier(context)  # the same callback delivered again
    assert len(notifier.delivered) == 3
    notifier({**context, "dag_run": SimpleNamespace(clear_number=1)})  # cleared, and it failed again
    assert len(notifier.delivered) == 6
    assert sent_messages(tmp_path) == {f"{RUN_ID}#0": notifier.delivered[:3], f"{RUN_ID}#1": notifier.delivered[3:]}


def test_a_message_whose_delivery_failed_goes_with_the_next_delivery_the_others_do_not(tmp_path):
    import json

    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    settings = SimpleNamespace(name="Driver Training", key="driver_training", data_dir=None, notifications=SETTINGS)

    class FailingOnce(Recording):
        def deliver(self, message, settings, context):
            if message.key == "owner PSIber HR" and "owner PSIber HR" not in self.delivered:
                self.delivered.append(message.key)
                raise ConnectionRefusedError("smtp down")
            super().deliver(message, settings, context)

    notifier = FailingOnce(settings, failed=True, run_dir=lambda _, run_id: tmp_path)
    context = {"dag": DAG("psiber_moodle_driver_training", schedule=None), "run_id": RUN_ID,
               "dag_run": SimpleNamespace(clear_number=0)}
    with pytest.raises(ConnectionRefusedError):
        notifier(context)
    notifier(context)
    assert notifier.delivered == [FAILED_RUN, "owner PSIber HR", "owner PSIber HR", "owner Moodle administrator"]


BLOCK = {"smtp_conn_id": "smtp_ops", "failed_runs": ["it@example.com"],
         "problems_by_owner": {"PSIber HR": ["hr@example.com"]}}


def test_both_kinds_files_take_the_block_and_without_it_a_dag_has_no_callbacks():
    import yaml

    psiber = integration(notifications=BLOCK)
    school = SchoolIntegration.model_validate({**yaml.safe_load(MINIMAL), "notifications": BLOCK})
    assert psiber.notifications == school.notifications
    assert [type(n).__name__ for n in run_callbacks(psiber)["on_failure_callback"]] == ["SmtpRunNotifier"]
    assert run_callbacks(integration()) == {"on_failure_callback": None, "on_success_callback": None}


@pytest.mark.parametrize("block", [
    {**BLOCK, "password": "secret"},                                   # no credentials here: the Connection has them
    {**BLOCK, "failed_runs": ["not an address"]},
    {**BLOCK, "problems_by_owner": {"PSIber HR": []}},
    {**BLOCK, "problems_by_owner": {"PSIber HR": ["a@example.com"], "psiber hr": ["b@example.com"]}},
    {**BLOCK, "smtp_conn_id": "smtp ops"},
])
def test_a_bad_block_is_refused(block):
    with pytest.raises(ValidationError):
        integration(notifications=block)

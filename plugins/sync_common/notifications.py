"""Who is told of a finished run without opening Airflow: a failed run, and each owner's problem records.

Airflow's notifier mechanism carries it: ``run_callbacks`` gives a DAG its ``on_failure_callback`` and
``on_success_callback``, lists of notifiers, so another channel (the Slack or Teams providers' notifiers, or a
subclass of ``SyncRunNotifier`` whose ``deliver`` posts elsewhere) plugs in the same way. The messages are built
from the run's ``summary.json`` (what ``summarize_run`` wrote, problems with their reasons and owners) by a pure
function, carry counts, the top reasons and a link to the run's Sync report, name records as the report does
(employee numbers, External IDs, course codes) with e-mails masked, and never a Connection's secret. What was
sent is remembered in the run's folder per run try (``DagRun.clear_number``), so a callback delivered twice, or a
notifier failing after some messages went, sends nothing twice; a cleared run that fails again is a new try.
Every integration file's settings import ``NotificationSettings``, so the run-data modules (pandas) are imported
only when a run is told.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol
from urllib.parse import quote

from airflow.sdk import BaseNotifier, conf
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync_common.outcomes import mask_emails

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sync_common.run_files import RunPath

# The Airflow UI's address of a run's Sync report tab (the UI plugin's external view, ``url_route``), which opens
# the report page inside Airflow's frame.
REPORT_TAB = "sync-report"
SENT_FILE = "notifications_sent.json"
TOP_REASONS = 5
LISTED_RECORDS = 100  # per owner's message; the rest are counted and in the report
FAILED_RUN = "failed run"

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
Address = Annotated[str, Field(pattern=_ADDRESS.pattern)]
Recipients = Annotated[tuple[Address, ...], Field(min_length=1)]


class NotificationSettings(BaseModel):
    """The ``notifications`` block of an integration file: the SMTP Connection (its host, login and password live
    there, never here), who hears of a failed run, and per owner (as the outcomes name them: ``Moodle administrator``,
    a source system's administrator...) who gets the list of their own problem records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_conn_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    from_email: Address | None = Field(default=None, description="Else the SMTP Connection's from_email.")
    failed_runs: tuple[Address, ...] = ()
    problems_by_owner: dict[Annotated[str, Field(min_length=1)], Recipients] = {}

    @field_validator("problems_by_owner")
    @classmethod
    def _owners_once(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        folded = Counter(owner.strip().casefold() for owner in value)
        twice = sorted(owner for owner in value if folded[owner.strip().casefold()] > 1)
        if twice:
            raise ValueError(f"owners named twice (letter case aside): {', '.join(twice)}")
        return value


class Notified(Protocol):
    """What the notifier needs of an integration, whatever its source system."""

    name: str
    key: str
    data_dir: str | None
    notifications: NotificationSettings | None


@dataclass(frozen=True)
class Message:
    """One message to one group of recipients; ``key`` says which it is within a run try."""

    key: str
    recipients: tuple[str, ...]
    subject: str
    paragraphs: tuple[str, ...]
    records: tuple[str, ...]
    link: str

    def html(self) -> str:
        """Every value escaped: reasons and records are data from the source systems."""
        parts = [f"<p>{html.escape(text)}</p>" for text in self.paragraphs]
        if self.records:
            parts.append("<ul>" + "".join(f"<li>{html.escape(record)}</li>" for record in self.records) + "</ul>")
        parts.append(f'<p>Sync report: <a href="{html.escape(self.link)}">{html.escape(self.link)}</a></p>')
        return "\n".join(parts)


def report_link(base_url: str | None, dag_id: str, run_id: str) -> str:
    """The run's Sync report tab in Airflow's UI (``[api] base_url`` in front; a path alone when it is unset)."""
    return f"{(base_url or '').rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/plugin/" \
           f"{REPORT_TAB}"


def owner_parts(owner: str) -> set[str]:
    """A record's owner and each of the owners it names ("Moodle administrator / data engineer"), letter case aside."""
    whole = owner.strip().casefold()
    return {whole, *(part.strip().casefold() for part in owner.split("/") if part.strip())} if whole else set()


def _counts_line(counts: dict[str, dict[str, int]]) -> str:
    flows = ["{}: {}".format(flow, ", ".join(f"{action} {count:,}" for action, count in actions.items() if count))
             for flow, actions in counts.items() if any(actions.values())]
    return "Counts: " + ("; ".join(flows) if flows else "no records") + "."


def _top_reasons(problems: list[dict], with_owner: bool) -> list[str]:
    reasons = Counter((p["action"], mask_emails(p["reason"] or "(no reason given)"), p["owner"] or "no owner")
                      for p in problems)
    return [f"{count:,} {action}: {reason}" + (f" (owner: {owner})" if with_owner else "")
            for (action, reason, owner), count in reasons.most_common(TOP_REASONS)]


def run_messages(settings: NotificationSettings, integration_name: str, run_id: str, summary: dict | None,
                 failed: bool, link: str) -> list[Message]:
    """The messages one finished run try calls for: to ``failed_runs`` when it failed, and to each owner in
    ``problems_by_owner`` whose records are among its problems (``summary``: the run's summary.json, None when
    the run wrote none)."""
    from sync_common.run_summary import is_problem

    summary = summary or {}
    problems = [o for o in summary.get("outcomes", []) if is_problem(o["action"])]
    messages = []
    if failed and settings.failed_runs:
        failed_tasks, unfinished = summary.get("failed_tasks", []), summary.get("unfinished_tasks", [])
        not_run = [name for name in unfinished if name not in failed_tasks]
        paragraphs = [f"The sync run {run_id} of {integration_name} failed."]
        if summary:
            paragraphs.append(f"Failed tasks: {', '.join(failed_tasks) or 'none'}; "
                              f"{len(not_run)} did not run because of them.")
            paragraphs.extend(f"{failure['task']}: {failure['error']}"
                              + (f" ({mask_emails(failure['detail'])})" if failure.get("detail") else "")
                              + f" — owner: {failure['owner']} — {failure['next_step']}."
                              for failure in summary.get("failures", []))
            paragraphs.append(_counts_line(summary.get("counts", {})))
            paragraphs.append(f"{len(problems):,} problem records" + (
                ", the most frequent: " + "; ".join(_top_reasons(problems, with_owner=True)) if problems else "."))
        else:
            paragraphs.append("It wrote no summary: its summarize_run task did not run (see the run in Airflow).")
        messages.append(Message(FAILED_RUN, settings.failed_runs, f"Moodle sync {integration_name}: run failed",
                                tuple(paragraphs), (), link))
    for owner, recipients in settings.problems_by_owner.items():
        wanted = owner.strip().casefold()
        theirs = [p for p in problems if wanted in owner_parts(p["owner"] or "")]
        if not theirs:
            continue
        by_action = Counter(p["action"] for p in theirs)
        told = (
            f"The sync run {run_id} of {integration_name} left {len(theirs):,} problem records for {owner}: "
            + ", ".join(f"{action} {count:,}" for action, count in by_action.most_common()) + ".",
            "The most frequent reasons: " + "; ".join(_top_reasons(theirs, with_owner=False)) + ".",
            *([f"The first {LISTED_RECORDS} are listed; the report (filter by owner) has all {len(theirs):,}."]
              if len(theirs) > LISTED_RECORDS else []),
        )
        records = tuple(f"{p['flow']}: {mask_emails(str(p['record']))}: {p['action']}: "
                        f"{mask_emails(p['reason'] or '')}" for p in theirs[:LISTED_RECORDS])
        messages.append(Message(f"owner {owner}", recipients,
                                f"Moodle sync {integration_name}: {len(theirs):,} records for {owner}",
                                told, records, link))
    return messages


def sent_messages(folder: RunPath) -> dict[str, list[str]]:
    """What was sent for each try of the run in ``folder`` (``<run id>#<try>``: message keys)."""
    from sync_common.run_files import read_json

    path = folder / SENT_FILE
    return read_json(path) if path.exists() else {}


def run_try(context: Context) -> int:
    """Which try of the run this is: how many times it was cleared (0 when the context has no run)."""
    dag_run = context.get("dag_run")
    return int(getattr(dag_run, "clear_number", 0) or 0)


class SyncRunNotifier(BaseNotifier):
    """Tells a finished run's failure and problems, each message once per run try; ``deliver`` sends one."""

    def __init__(self, integration: Notified, failed: bool, run_dir: Callable[[Notified, str], RunPath] | None = None):
        super().__init__()
        self.integration, self.failed, self.run_dir = integration, failed, run_dir

    def deliver(self, message: Message, settings: NotificationSettings, context: Context) -> None:
        raise NotImplementedError

    def render_template_fields(self, context: Context, jinja_env=None) -> None:
        """Nothing here is a template (each message is built from the run's summary), so nothing is rendered: a
        DAG-level callback of ``dag.test()`` gets the scheduler's DAG, which has no template environment."""

    def notify(self, context: Context) -> None:
        settings = self.integration.notifications
        if settings is None:
            return
        from sync_common.run_files import read_json, run_directory, write_json

        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        folder = (self.run_dir or run_directory)(self.integration, run_id)
        summary_file = folder / "summary.json"
        summary = read_json(summary_file) if summary_file.exists() else None
        link = report_link(conf.get("api", "base_url", fallback=None), dag_id, run_id)
        sent, attempt = sent_messages(folder), f"{run_id}#{run_try(context)}"
        for message in run_messages(settings, self.integration.name, run_id, summary, self.failed, link):
            if message.key in sent.get(attempt, []):
                continue
            self.deliver(message, settings, context)
            sent.setdefault(attempt, []).append(message.key)
            write_json(folder / SENT_FILE, sent)
            self.log.info("Told %s of run %s (%d recipients)", message.key, run_id, len(message.recipients))


class SmtpRunNotifier(SyncRunNotifier):
    """Each message as an e-mail through the SMTP provider's ``SmtpNotifier`` and the settings' Connection."""

    def deliver(self, message: Message, settings: NotificationSettings, context: Context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier
        from airflow.sdk import BaseHook

        sender = settings.from_email or BaseHook.get_connection(settings.smtp_conn_id).extra_dejson.get("from_email")
        if not sender:
            raise ValueError(f"notifications of '{self.integration.name}': no sender: set notifications.from_email "
                             f"in the integration file or from_email in the Extra of the Connection "
                             f"'{settings.smtp_conn_id}'")
        SmtpNotifier(to=list(message.recipients), from_email=sender, subject=message.subject,
                     html_content=message.html(), smtp_conn_id=settings.smtp_conn_id).notify(context)


def run_callbacks(integration: Notified) -> dict[str, list | None]:
    """A DAG's ``on_failure_callback`` and ``on_success_callback`` (lists: another channel's notifier is one
    more item): the integration's e-mails when its file has a ``notifications`` block, else none."""
    if integration.notifications is None:
        return {"on_failure_callback": None, "on_success_callback": None}
    return {"on_failure_callback": [SmtpRunNotifier(integration, failed=True)],
            "on_success_callback": [SmtpRunNotifier(integration, failed=False)]}

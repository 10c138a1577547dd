"""The ESS tables in PSIber's database (``include/sql/ess_*.sql``): offers, notifications, assessments
seen, enrolment requests. Each save is one transaction, so a step stopped half-way leaves no half
of its changes (a notification without its offer, a decided request without its notification)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from psiber.ess_assessments import Assessment
from psiber.ess_enrolments import Decision, Request
from psiber.ess_notifications import Notification
from psiber.ess_offers import OfferPlan
from sync_common.database import sql


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _rows(engine: Engine, name: str, integration_name: str) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(sql(name)), {"integration_name": integration_name})
                .mappings()]


def _execute_many(connection: Connection, name: str, rows: list[dict]) -> None:
    if rows:
        connection.execute(text(sql(name)), rows)


def _insert_notifications(connection: Connection, integration_name: str, notifications: Iterable[Notification],
                          now: datetime) -> None:
    _execute_many(connection, "ess_insert_notification", [
        {"integration_name": integration_name, "employee_id": n.employee_id, "notification_key": n.key,
         "kind": n.kind, "moodle_course_id": n.moodle_course_id, "course_code": n.course_code,
         "assessment": n.assessment, "text": n.text[:1000], "now": now} for n in notifications])


def select_offers(engine: Engine, integration_name: str) -> list[dict]:
    return _rows(engine, "ess_select_offers", integration_name)


def save_offer_plan(engine: Engine, integration_name: str, plan: OfferPlan) -> None:
    now = _now()
    keys = {"integration_name": integration_name, "now": now}
    with engine.begin() as connection:
        _execute_many(connection, "ess_insert_offer", [{**keys, **row} for row in plan.inserts])
        _execute_many(connection, "ess_update_offer", [{**keys, **row} for row in plan.updates])
        _insert_notifications(connection, integration_name, plan.notifications, now)


def select_assessments(engine: Engine, integration_name: str) -> list[dict]:
    return _rows(engine, "ess_select_assessments", integration_name)


def save_assessments(engine: Engine, integration_name: str, assessments: Iterable[Assessment],
                     notifications: Iterable[Notification]) -> None:
    now = _now()
    with engine.begin() as connection:
        _execute_many(connection, "ess_upsert_assessment", [
            {"integration_name": integration_name, "now": now, **a.to_dict(), "name": a.name[:255]}
            for a in assessments])
        _insert_notifications(connection, integration_name, notifications, now)


def select_pending_requests(engine: Engine, integration_name: str) -> list[Request]:
    """Pending requests; ``requested_at`` stays as the database gave it, to find the row again."""
    return [Request(int(row["employee_id"]), row["employee_number"], int(row["moodle_course_id"]),
                    str(row["requested_at"]), row["approved_at"] is not None)
            for row in _rows(engine, "ess_select_pending_requests", integration_name)]


def save_decisions(engine: Engine, integration_name: str, decisions: Iterable[Decision],
                   notifications: Iterable[Notification]) -> int:
    """Write back each request's outcome (once: a decided request is left alone) and tell the employee."""
    now = _now()
    decided = 0
    with engine.begin() as connection:
        for decision in decisions:
            decided += connection.execute(text(sql("ess_decide_request")), {
                "integration_name": integration_name, "employee_id": decision.employee_id,
                "moodle_course_id": decision.moodle_course_id, "requested_at": decision.requested_at,
                "state": decision.state, "reason": decision.reason[:1000], "now": now}).rowcount
        _insert_notifications(connection, integration_name, notifications, now)
    return decided

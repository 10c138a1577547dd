"""The ESS tables in PSIber's database (``include/sql/ess_*.sql``): offers, notifications, assessments
seen, enrolment requests. Each save is one transaction, so a step stopped half-way leaves no half
of its changes (a notification without its offer, a decided request without its notification)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, text

from psiber.ess_assessments import Assessment
from psiber.ess_enrolments import Decision, Request
from psiber.ess_notifications import Notification, new_course
from psiber.ess_offers import Offer, WantedOffers
from sync_common.database import sql, statements

T = TypeVar("T")
CHANGES_PER_FETCH = 10_000


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


def refresh_offers(engine: Engine, integration_name: str, wanted: WantedOffers,
                   told: Callable[[Iterable[tuple[int, str, str]]], T]) -> T:
    """Bring the integration's offers to ``wanted``, the database finding what changes: the offers of the
    employees whose offers change since the last refresh (their fingerprints, ``ess_offer_fingerprint``) are
    compared, this run's offers going in as groups (employees × courses, joined there), and only the changed
    offers are written or come back, so no night holds an object per offer and a quiet night compares none.
    ``told`` gets the changes employees are told of as they are read, (employee id, change, course code) by
    employee and change, and what it returns is returned."""
    now = _now()
    fingerprints = wanted.fingerprints()
    with engine.begin() as connection:
        held: dict[int, str] = {int(employee): fingerprint for employee, fingerprint in connection.execute(
            text(sql("ess_select_offer_fingerprints")), {"integration_name": integration_name})}
        compared = sorted({e for e, fingerprint in fingerprints.items() if held.get(e) != fingerprint}
                          | (held.keys() - fingerprints.keys()))
        if not compared:
            return told(())
        params = {"integration_name": integration_name, "now": now, "everyone": int(not held)}
        _run(connection, "ess_offer_diff_drop", params)
        _run(connection, "ess_offer_diff_tables", params)
        _execute_many(connection, "ess_insert_wanted_course", [_wanted_course(o) for o in wanted.courses.values()])
        _execute_many(connection, "ess_insert_wanted_group_course", [
            {"offer_group": group, "moodle_course_id": course_id}
            for group, course_ids in enumerate(wanted.groups) for course_id in course_ids])
        _execute_many(connection, "ess_insert_compared_employee", [{"employee_id": e} for e in compared])
        _execute_many(connection, "ess_insert_wanted_employee", [
            {"employee_id": e, "offer_group": wanted.employee_groups[e]} for e in compared
            if e in wanted.employee_groups])
        _run(connection, "ess_offer_diff_analyze", params)
        _run(connection, "ess_find_ended_or_renamed_offers", params)
        _run(connection, "ess_find_started_offers", params)
        changes = connection.execute(text(sql("ess_select_offer_changes")).execution_options(
            stream_results=True, yield_per=CHANGES_PER_FETCH))
        result = told(tuple(row) for row in changes)
        _run(connection, "ess_apply_offer_changes", params)
        _run(connection, "ess_offer_diff_drop", params)
        _execute_many(connection, "ess_upsert_offer_fingerprint", [
            {"integration_name": integration_name, "employee_id": e, "fingerprint": fingerprints[e]}
            for e in compared if e in fingerprints])
        _execute_many(connection, "ess_delete_offer_fingerprint", [
            {"integration_name": integration_name, "employee_id": e} for e in compared if e not in fingerprints])
    return result


def _wanted_course(offer: Offer) -> dict:
    """A course offered, with its announcement: the same for every employee (the database adds who)."""
    announcement = new_course(0, offer.moodle_course_id, offer.course_code, offer.course_name)
    return {"moodle_course_id": offer.moodle_course_id, "course_code": offer.course_code,
            "course_name": offer.course_name, "notification_key": announcement.key,
            "notification_kind": announcement.kind, "notification_text": announcement.text[:1000]}


def _run(connection: Connection, name: str, params: dict) -> None:
    for statement in statements(name):
        connection.execute(text(statement), params)


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

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
from psiber.ess_offers import HeldOffers, Offer, WantedOffers, changed_employees, plan_offer_changes
from sync_common.database import rows_of_keys, sql, statements
from sync_common.outcomes import Outcome


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
                   numbers: dict[int, str]) -> list[Outcome]:
    """Bring the integration's offers to ``wanted``: only the employees whose group changed since the last
    refresh are planned (``ess_offers.plan_offer_changes``) and written, with the groups and sets of courses
    ever offered they name, so a quiet night writes nothing and a first night writes a row per employee and a
    group's courses once. The outcomes employees are told of are returned."""
    groups_now = wanted.employee_groups_now()
    with engine.begin() as connection:
        held = {int(employee): HeldOffers(group, ever) for employee, group, ever in connection.execute(
            text(sql("ess_select_employee_offers")), {"integration_name": integration_name})}
        changed = changed_employees(groups_now, held)
        if not changed:
            return []
        before = [held[e] for e in changed if e in held]
        held_groups: dict[str, dict[int, Offer]] = {}
        for group, course_id, code, name in _named(connection, "ess_select_offer_groups", integration_name,
                                                   "offer_groups", (h.offer_group for h in before)):
            held_groups.setdefault(group, {})[int(course_id)] = Offer(int(course_id), code, name)
        held_ever: dict[str, set[int]] = {}
        for course_set, course_id in _named(connection, "ess_select_offered_ever", integration_name, "course_sets",
                                            (h.offered_ever for h in before)):
            held_ever.setdefault(course_set, set()).add(int(course_id))
        plan = plan_offer_changes(wanted, changed, groups_now, held, held_groups,
                                  {name: frozenset(ids) for name, ids in held_ever.items()}, numbers)
        now = _now()
        row = {"integration_name": integration_name}
        _execute_many(connection, "ess_insert_offer_group", [
            {**row, "offer_group": group, "moodle_course_id": o.moodle_course_id, "course_code": o.course_code,
             "course_name": o.course_name} for group, offers in plan.groups.items() for o in offers])
        _execute_many(connection, "ess_insert_offered_ever", [
            {**row, "course_set": course_set, "moodle_course_id": course_id}
            for course_set, course_ids in plan.ever_sets.items() for course_id in course_ids])
        _execute_many(connection, "ess_upsert_employee_offer", [
            {**row, "now": now, "employee_id": employee, "offer_group": group, "offered_ever": ever}
            for employee, group, ever in plan.employees])
        _insert_notifications(connection, integration_name, plan.notifications, now)
        _run(connection, "ess_delete_unheld_offer_sets", row)
    return plan.outcomes


def _named(connection: Connection, name: str, integration_name: str, names_param: str,
           names: Iterable[str | None]) -> list[tuple]:
    """The rows of a query over the named groups or sets (none named: no query)."""
    return [tuple(row) for row in rows_of_keys(connection, name, names_param,
                                               sorted({n for n in names if n is not None}),
                                               {"integration_name": integration_name})]


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

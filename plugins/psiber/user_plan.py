"""Compare the wanted Moodle users with Moodle's actual state and decide what to change (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from sync_common.errors import PermanentStepError
from sync_common.outcomes import OWNER_MOODLE_ADMIN, OWNER_PSIBER_HR, Outcome

_PLAIN_FIELDS = ("username", "email", "firstname", "lastname", "idnumber")


@dataclass
class UserPlan:
    """Moodle writes to make, and the links and outcomes they imply.

    ``creates`` hold create_users entries (plus ``employee_id``); ``updates`` hold
    update_users entries with only the changed fields (plus ``employee_id`` and ``action``).
    ``links`` are (employee_id, moodle_user_id, username) for users that already exist.
    """

    creates: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    links: list[tuple[int, int, str]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    active_matched: int = 0

    @property
    def suspensions(self) -> int:
        return sum(1 for update in self.updates if update["action"] == "suspended")


class SuspendGuardTripped(PermanentStepError):
    """The plan would suspend too many users: the extract is probably empty or truncated."""


def _moodle_customfields(user: dict) -> dict[str, str]:
    return {item["shortname"]: str(item.get("value") or "") for item in user.get("customfields") or []}


def _differs(name: str, current, wanted: str) -> bool:
    current = str(current or "")
    if name in ("username", "email"):
        return current.casefold() != wanted.casefold()
    return current != wanted


def _changes(target: dict, user: dict) -> dict:
    changes = {name: target[name] for name in _PLAIN_FIELDS if _differs(name, user.get(name), target[name])}
    current = _moodle_customfields(user)
    fields = [
        {"type": name, "value": value}
        for name, value in target["customfields"].items()
        if current.get(name, "") != value
    ]
    if fields:
        changes["customfields"] = fields
    return changes


def plan_user_changes(
    targets: pd.DataFrame,
    moodle_users: Iterable[dict],
    links: pd.DataFrame,
    extracted_employee_ids: Iterable[int],
    passwords_by_email: bool = False,
) -> UserPlan:
    """Decide create / update / suspend / unsuspend / unchanged for every target user.

    A target is matched to Moodle through its link row, else through Moodle's ID number.
    An unmatched target whose username or e-mail belongs to another Moodle user is a
    conflict (never a second account). Linked users whose employee left the extract
    (terminated out of the payroll, payroll disabled) are suspended, never deleted. With
    ``passwords_by_email`` (Moodle e-mails a generated password), an employee with only a
    pseudo e-mail is not created: the password would go to an address nobody reads.
    """
    users = {int(user["id"]): user for user in moodle_users}
    by_idnumber = {str(u.get("idnumber")): u for u in users.values() if u.get("idnumber")}
    by_login: dict[str, dict] = {}
    for user in users.values():
        for key in (user.get("username"), user.get("email")):
            if key:
                by_login.setdefault(str(key).casefold(), user)
    linked_user_of = {int(row.employee_id): int(row.moodle_user_id) for row in links.itertuples()}
    number_of = {int(row.employee_id): row.employee_number for row in links.itertuples()}

    plan = UserPlan()
    for target in targets.to_dict("records"):
        employee = target["employee_number"]
        user = users.get(linked_user_of.get(target["employee_id"], -1)) or by_idnumber.get(target["idnumber"])
        if user is None:
            owner = by_login.get(target["username"]) or by_login.get(target["email"])
            if owner is not None:
                plan.outcomes.append(Outcome(
                    employee, "conflict",
                    f"the e-mail/username is already used by Moodle user #{owner['id']} with ID number "
                    f"'{owner.get('idnumber') or ''}'; if that account is this employee's, set its ID number to "
                    f"'{target['idnumber']}' in Moodle, otherwise correct the e-mail in PSIber",
                    f"{OWNER_MOODLE_ADMIN} / {OWNER_PSIBER_HR}",
                ))
            elif target["suspended"]:
                plan.outcomes.append(Outcome(employee, "skipped", "not active and has no Moodle account"))
            elif passwords_by_email and target.get("pseudo_email"):
                plan.outcomes.append(Outcome(
                    employee, "skipped", "no real e-mail to send Moodle's generated password to; give the employee "
                    "an e-mail in PSIber, or use the initial_password policy", OWNER_PSIBER_HR))
            else:
                entry = {name: target[name] for name in _PLAIN_FIELDS}
                entry["customfields"] = [{"type": k, "value": v} for k, v in target["customfields"].items() if v]
                plan.creates.append({"employee_id": target["employee_id"],
                                     "employee_number": target["employee_number"], **entry})
            continue

        plan.links.append((target["employee_id"], int(user["id"]), target["username"]))
        plan.active_matched += not user.get("suspended")
        changes = _changes(target, user)
        for name in ("username", "email"):
            holder = by_login.get(str(changes.get(name, "")).casefold())
            if name in changes and holder is not None and holder["id"] != user["id"]:
                plan.outcomes.append(Outcome(
                    employee, "conflict",
                    f"new {name} is already used by Moodle user #{holder['id']}; {name} left unchanged",
                    f"{OWNER_MOODLE_ADMIN} / {OWNER_PSIBER_HR}",
                ))
                del changes[name]
        if bool(user.get("suspended")) != target["suspended"]:
            changes["suspended"] = int(target["suspended"])
            action = "suspended" if target["suspended"] else "unsuspended"
        else:
            action = "updated"
        if changes:
            plan.updates.append({"employee_id": target["employee_id"], "employee_number": target["employee_number"],
                                 "action": action, "id": int(user["id"]),
                                 "changed": sorted(changes), **changes})
        else:
            plan.outcomes.append(Outcome(employee, "unchanged"))

    extracted = set(extracted_employee_ids)
    matched_now = {user_id for _, user_id, _ in plan.links}  # e.g. a transfer: new employee row, same number
    for employee_id, user_id in linked_user_of.items():
        user = users.get(user_id)
        if employee_id in extracted or user is None or user_id in matched_now:
            continue
        if user.get("suspended"):
            continue
        plan.active_matched += 1
        plan.updates.append({"employee_id": employee_id, "employee_number": number_of[employee_id],
                             "action": "suspended", "id": user_id,
                             "changed": ["suspended"], "suspended": 1,
                             "reason": "employee is no longer in the integration's payrolls"})
    return plan


def check_suspend_guard(plan: UserPlan, max_share: float, min_users: int) -> None:
    """Refuse a plan that suspends more than ``max_share`` of the active matched users."""
    base = plan.active_matched
    if base < min_users or base == 0:
        return
    share = plan.suspensions / base
    if share > max_share:
        raise SuspendGuardTripped(
            f"the plan would suspend {plan.suspensions} of {base} active Moodle users ({share:.0%}), more than "
            f"the allowed {max_share:.0%}. An empty or truncated PSIber extract (year end, payroll change) "
            "usually causes this. Check the extract; if the suspensions are intended, trigger the run with "
            "the parameter allow_mass_suspension=true (owner: PSIber HR / data engineer)"
        )

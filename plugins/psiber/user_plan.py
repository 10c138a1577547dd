"""Compare the wanted Moodle users with Moodle's actual state and decide what to change (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from psiber.employee_validation import PSIBER, normalised_key
from sync_common.employee_source import EmployeeSource
from sync_common.frames import frame_records
from sync_common.mass_change import MassChangeGuardTripped, excessive_share
from sync_common.moodle_rules import deleted_account_reason, is_deleted_account
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.refusals import fingerprint as fingerprint_of

_PLAIN_FIELDS = ("username", "email", "firstname", "lastname", "idnumber")
# What a departed employee's link holds once their account is suspended: not read again until a full read.
DEPARTED = "departed"
# Keys of plan entries that are ours, not Moodle's: removed before a write is sent.
PLAN_ONLY_KEYS = ("employee_id", "employee_number", "action", "changed", "reason")


@dataclass
class UserPlan:
    """Moodle writes to make, and the links and outcomes they imply.

    ``creates`` hold create_users entries (plus ``employee_id``); ``updates`` hold
    update_users entries with only the changed fields (plus ``employee_id`` and ``action``).
    ``links`` are (employee_id, moodle_user_id, username) for users that already exist; ``unlinks`` the
    employee ids whose linked account an administrator deleted in Moodle. ``synced`` holds, per employee whose
    account was read (or left unread as its link holds it), the fingerprint its link is to keep
    (``synced_fingerprint``, or ``DEPARTED``) once Moodle holds it (as read, or once it confirms this plan's
    write), or None: Moodle differs and this run leaves it so (conflict, quarantine), so it is read again.
    """

    creates: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    links: list[tuple[int, int, str]] = field(default_factory=list)
    unlinks: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    active_matched: int = 0
    synced: dict[int, str | None] = field(default_factory=dict)

    @property
    def suspensions(self) -> int:
        return sum(1 for update in self.updates if update["action"] == "suspended")


class SuspendGuardTripped(MassChangeGuardTripped):
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


def fingerprint(entry: dict) -> str:
    """What a write would send to Moodle (plan-only keys aside), as a short hash: a refused record is
    sent again only when this changes."""
    return fingerprint_of(entry, PLAN_ONLY_KEYS)


def synced_fingerprint(target: dict) -> str:
    """What the plan compares with Moodle of a target (fields, profile fields, suspension), as a short hash: a link
    holding its target's fingerprint is not read on a quiet night (``accounts_to_read``)."""
    return fingerprint_of({**{name: str(target.get(name, "")) for name in _PLAIN_FIELDS},
                           "customfields": {str(k): str(v) for k, v in dict(target.get("customfields") or {}).items()},
                           "suspended": bool(target.get("suspended"))})


def settled_employees(employee_ids: Iterable[int], fingerprints: Iterable[str], links: pd.DataFrame) -> dict[int, str]:
    """The employees whose source row (``fingerprints``: ``sync_common.frames.row_fingerprints``, one per id) is the
    one their linked account was last synced from while Moodle held its target: employee id → the linked username.

    Nothing of theirs can need a write but what an administrator changed in Moodle, which a full read looks at: the
    users flow neither validates (row by row), transforms, reads nor plans them. A departed employee's link, and one
    whose account Moodle did not confirm, holds no source row.
    """
    if "source_fingerprint" not in links.columns:
        return {}
    rows = dict(zip(map(int, employee_ids), fingerprints, strict=True))
    return {int(employee_id): username for employee_id, username, source, synced in zip(
                links["employee_id"].tolist(), links["moodle_username"].tolist(), links["source_fingerprint"].tolist(),
                links["synced_fingerprint"].tolist(), strict=True)
            if source and synced and synced != DEPARTED and rows.get(int(employee_id)) == source}


def accounts_to_read(targets: Iterable[dict], links: pd.DataFrame, extracted: Iterable[int], full: bool,
                     source: EmployeeSource = PSIBER) -> tuple[list[int], list[int]]:
    """The linked Moodle accounts to look up by id, and the targets left unread (linked: as synced; not linked and
    inactive: no account to make, nor looked for).

    A full read reads every linked account (an administrator's edits in Moodle show only so), and a targeted run
    every account of its listed employees. Otherwise only what may need a write: a target whose fingerprint is not
    the one its link holds (changed in the source, never confirmed, refused), and a departed employee whose
    account was not seen suspended. Unchanged people are neither read nor written, and an inactive employee
    without an account is looked for (an account an administrator made by hand) on a full read only.
    """
    targets = list(targets)
    wanted = {int(target["employee_id"]): synced_fingerprint(target) for target in targets}
    linked = {int(employee_id) for employee_id in links["employee_id"]}
    left = set(map(int, extracted))
    read: set[int] = set()
    unread: list[int] = []
    if not (full or source.listed):  # an extracted employee with no target (settled, invalid) needs no read
        ids = links["employee_id"].astype(int)
        links = links[(ids.isin(list(wanted)) | ~ids.isin(left)).to_numpy(dtype=bool)]
    for row in links.itertuples():
        employee_id, held = int(row.employee_id), getattr(row, "synced_fingerprint", None)
        if not source.syncs(row.employee_number) and employee_id not in wanted:
            continue
        settled = held == wanted[employee_id] if employee_id in wanted else held == DEPARTED
        if full or source.listed or not settled:
            read.add(int(row.moodle_user_id))
        elif employee_id in wanted:
            unread.append(employee_id)
    if not (full or source.listed):
        unread += [int(target["employee_id"]) for target in targets
                   if target.get("suspended") and int(target["employee_id"]) not in linked]
    return sorted(read), sorted(unread)


def _users_by(users: Iterable[dict], *fields: str) -> dict[str, list[dict]]:
    """Moodle users under each normalised value of ``fields`` (several users may share one)."""
    found: dict[str, list[dict]] = {}
    for user in users:
        for name in fields:
            key = normalised_key(user.get(name))
            if key and user not in found.setdefault(key, []):
                found[key].append(user)
    return found


def _accounts(users: Iterable[dict]) -> str:
    return " and ".join(f"#{user['id']}" for user in users)


def look_ups_needed(targets: Iterable[dict], links: pd.DataFrame, linked_users: Mapping[int, dict],
                    unread: Collection[int] = ()) -> dict[str, list[str]]:
    """The values to look up in Moodle, beyond the linked accounts (``linked_users``, by id), so that
    ``plan_user_changes`` decides as it would with every target looked up by every field.

    A target without a linked account (never linked, or the account was deleted, its row gone or
    answered as an administrator's deletion leaves it: ``is_deleted_account``) is matched and
    checked by ID number, username and e-mail, so it is looked up by all of them. A target whose
    linked account exists is never matched again: only a username or e-mail it is to change is
    checked (is it another account's?), so only that value is looked up. A quiet night needs none.
    E-mails are asked both as written and in the source's letter case: Moodle's look-up by e-mail is
    case-sensitive on some databases. A target left ``unread`` (``accounts_to_read``) needs none.
    """
    live = {user_id: user for user_id, user in linked_users.items() if not is_deleted_account(user)}
    account_of = {int(employee_id): live.get(int(user_id)) for employee_id, user_id in
                  zip(links["employee_id"].tolist(), links["moodle_user_id"].tolist(), strict=True)}
    wanted: dict[str, set[str]] = {"idnumber": set(), "username": set(), "email": set()}
    for target in targets:
        if int(target["employee_id"]) in unread:
            continue
        account = account_of.get(int(target["employee_id"]))
        if account is None:
            wanted["idnumber"].add(target["idnumber"])
        if account is None or _differs("username", account.get("username"), target["username"]):
            wanted["username"].add(target["username"])
        if account is None or _differs("email", account.get("email"), target["email"]):
            wanted["email"] |= {target["email"], target["email_as_given"]}
    return {name: sorted(values) for name, values in wanted.items()}


def plan_user_changes(
    targets: pd.DataFrame,
    moodle_users: Iterable[dict],
    links: pd.DataFrame,
    extracted_employee_ids: Iterable[int],
    passwords_by_email: bool = False,
    refusals: Mapping[int, dict] | None = None,
    departed: str = "suspend",
    source: EmployeeSource = PSIBER,
    unread: Collection[int] = (),
) -> UserPlan:
    """Decide create / update / suspend / unsuspend / unchanged for every target user, one outcome each.

    A target is matched to Moodle through its link row, else through Moodle's ID number. A match
    that is not unique (two accounts with the ID number, or the ID number on one account and the
    username/e-mail on another) is a conflict naming both accounts, and nothing is written to
    either: writing one person's data onto another's account is the worst thing a sync can do.
    An unmatched target whose username or e-mail belongs to another Moodle user is a conflict
    (never a second account). Linked users whose employee left the extract (terminated out of the
    payroll, payroll no longer covered, record deleted from the source) are suspended under
    ``departed="suspend"``, never deleted. With ``passwords_by_email`` (Moodle e-mails a generated
    password), an employee with only a pseudo e-mail is not created. ``refusals`` (employee id →
    fingerprint, reason, owner, refused_at) holds records Moodle refused: the same write is not
    sent again, but reported as quarantined. A link to an account an administrator deleted in Moodle
    (``is_deleted_account``) is dropped and the employee matched again or given a new account, with a
    warning naming the deleted account. Outcomes name ``source`` as where a record is corrected and its owner; a
    targeted run's source (``EmployeeSource.listed``) lets only its listed employees be taken for leavers.
    A linked target left ``unread`` (``accounts_to_read``: as last synced) is unchanged, as Moodle held it then; an
    unlinked one, not looked for, is matched with what was read.
    """
    users = {int(user["id"]): user for user in moodle_users}
    deleted = {user_id for user_id, user in users.items() if is_deleted_account(user)}
    users = {user_id: user for user_id, user in users.items() if user_id not in deleted}
    by_idnumber = _users_by(users.values(), "idnumber")
    by_login = _users_by(users.values(), "username", "email")
    linked_user_of = dict(zip(map(int, links["employee_id"].tolist()), map(int, links["moodle_user_id"].tolist()),
                              strict=True))
    refusals = refusals or {}

    plan = UserPlan()

    def write(kind: str, target: dict, entry: dict, complete: bool = True) -> None:
        """Plan a create or update (``complete``: Moodle then holds the whole target), unless it is quarantined."""
        refusal = refusals.get(int(target["employee_id"]))
        quarantine = refusal is not None and refusal["fingerprint"] == fingerprint(entry)
        plan.synced[int(target["employee_id"])] = synced_fingerprint(target) if complete and not quarantine else None
        if refusal is not None and quarantine:
            plan.outcomes.append(Outcome(
                target["employee_number"], "quarantined",
                f"not sent again: Moodle refused it on {str(refusal['refused_at'])[:10]} ({refusal['reason']}); it is "
                f"sent again when its {source.name} data changes, after users.retry_refused_after_days, or when the "
                "run is "
                "triggered with retry_refused=true", refusal["owner"]))
        else:
            (plan.creates if kind == "create" else plan.updates).append(entry)

    for target in frame_records(targets):
        employee = target["employee_number"]
        linked_id = linked_user_of.get(target["employee_id"], -1)
        if linked_id in deleted:
            plan.unlinks.append(target["employee_id"])
            plan.outcomes.append(Outcome(employee, "warning", deleted_account_reason(
                linked_id, "the employee is matched again by ID number, username and e-mail, or given a new "
                "account (this record's other line)"), OWNER_MOODLE_ADMIN))
        linked = users.get(linked_id)
        if linked is None and linked_id != -1 and linked_id not in deleted and target["employee_id"] in unread:
            plan.links.append((target["employee_id"], linked_id, target["username"]))
            plan.active_matched += not target["suspended"]
            plan.synced[int(target["employee_id"])] = synced_fingerprint(target)  # as held: its source row is kept
            plan.outcomes.append(Outcome(employee, "unchanged"))
            continue
        holders = [u for key in (target["username"], target["email"])
                   for u in by_login.get(normalised_key(key) or "", [])]
        holders = list({int(u["id"]): u for u in holders}.values())
        user: dict | None = linked
        if user is None:
            same_number = by_idnumber.get(normalised_key(target["idnumber"]) or "", [])
            others = [u for u in holders if same_number and u["id"] != same_number[0]["id"]]
            if len(same_number) > 1 or others:
                plan.outcomes.append(Outcome(
                    employee, "conflict",
                    f"ambiguous match: Moodle users {_accounts(same_number + others)} "
                    + (f"all carry ID number '{target['idnumber']}'" if len(same_number) > 1 else
                       f"split this employee: #{same_number[0]['id']} has the ID number, "
                       f"{_accounts(others)} the username/e-mail")
                    + "; nothing was written to either. Merge or correct the accounts in Moodle so that one "
                    "account holds the ID number, username and e-mail", f"{OWNER_MOODLE_ADMIN} / {source.owner}"))
                continue
            user = same_number[0] if same_number else None
        if user is None:
            if holders:
                owner = holders[0]
                plan.outcomes.append(Outcome(
                    employee, "conflict",
                    f"the e-mail/username is already used by Moodle user {_accounts(holders)} with ID number "
                    f"'{owner.get('idnumber') or ''}'; if that account is this employee's, set its ID number to "
                    f"'{target['idnumber']}' in Moodle, otherwise correct the e-mail in {source.name}",
                    f"{OWNER_MOODLE_ADMIN} / {source.owner}",
                ))
            elif target["suspended"]:
                plan.outcomes.append(Outcome(employee, "skipped", "not active and has no Moodle account"))
            elif passwords_by_email and target.get("pseudo_email"):
                plan.outcomes.append(Outcome(
                    employee, "skipped", "no real e-mail to send Moodle's generated password to; give the employee "
                    f"an e-mail in {source.name}, or use the initial_password policy", source.owner))
            else:
                write("create", target, new_account_entry(target))
            continue

        plan.links.append((target["employee_id"], int(user["id"]), target["username"]))
        plan.active_matched += not user.get("suspended")
        changes = _changes(target, user)
        kept = []
        for name in ("username", "email"):
            taken = [u for u in by_login.get(normalised_key(changes.get(name)) or "", []) if u["id"] != user["id"]]
            if name in changes and taken:
                kept.append(f"new {name} is already used by Moodle user {_accounts(taken)}; {name} left unchanged")
                del changes[name]
        if bool(user.get("suspended")) != target["suspended"]:
            changes["suspended"] = int(target["suspended"])
            action = "suspended" if target["suspended"] else "unsuspended"
        else:
            action = "updated"
        note = "; ".join(kept)
        if changes:
            write("update", target, {"employee_id": target["employee_id"], "employee_number": employee,
                                     "action": "conflict" if note else action, "id": int(user["id"]),
                                     "changed": sorted(changes), **({"reason": note} if note else {}), **changes},
                  complete=not note)
        else:
            plan.synced[int(target["employee_id"])] = None if note else synced_fingerprint(target)
            plan.outcomes.append(Outcome(employee, "conflict", note, f"{OWNER_MOODLE_ADMIN} / {source.owner}")
                                 if note else Outcome(employee, "unchanged"))

    _plan_departed(plan, users, links, set(extracted_employee_ids), departed, source)
    of_deleted = links[links["moodle_user_id"].astype(int).isin(deleted).to_numpy(dtype=bool)]
    plan.unlinks += sorted({int(row.employee_id) for row in of_deleted.itertuples()
                            if source.syncs(row.employee_number)} - set(plan.unlinks))
    return plan


def new_account_entry(target: dict) -> dict:
    """The create_users entry of a target employee (with our plan-only keys)."""
    entry = {name: target[name] for name in _PLAIN_FIELDS}
    entry["customfields"] = [{"type": k, "value": v} for k, v in target["customfields"].items() if v]
    return {"employee_id": target["employee_id"], "employee_number": target["employee_number"], **entry}


def _plan_departed(plan: UserPlan, users: dict[int, dict], links: pd.DataFrame, extracted: set[int],
                   departed: str, source: EmployeeSource) -> None:
    """Linked employees who left the extract: suspend their active account (or keep it, and say so). A targeted
    run's extract holds its listed employees only: no other is taken for a leaver."""
    matched_now = {user_id for _, user_id, _ in plan.links}  # e.g. a transfer: new employee row, same number
    left = links[~links["employee_id"].astype(int).isin(extracted).to_numpy(dtype=bool)]
    for row in left.itertuples():
        employee_id, user_id = int(row.employee_id), int(row.moodle_user_id)
        user = users.get(user_id)
        if user is None or user_id in matched_now or not source.syncs(row.employee_number):
            continue
        if user.get("suspended"):
            plan.synced[employee_id] = DEPARTED  # seen suspended: not read again until a full read
            continue
        exists = bool(getattr(row, "employee_exists", 1))
        record = row.employee_number if exists else source.gone_record.format(employee_id=employee_id)
        why = source.left if exists else source.gone
        if departed != "suspend":
            plan.outcomes.append(Outcome(record, "skipped", f"{why}; Moodle account #{user_id} left active "
                                                            "(users.departed_employees: keep)"))
            continue
        plan.active_matched += 1
        plan.synced[employee_id] = DEPARTED
        plan.updates.append({"employee_id": employee_id, "employee_number": record,
                             "action": "suspended", "id": user_id,
                             "changed": ["suspended"], "suspended": 1, "reason": why})


def check_suspend_guard(plan: UserPlan, max_share: float, min_users: int, source: EmployeeSource = PSIBER) -> None:
    """Refuse a plan that suspends more than ``max_share`` of the active matched users."""
    base = plan.active_matched
    share = excessive_share(plan.suspensions, base, max_share, min_users)
    if share is not None:
        raise SuspendGuardTripped(
            f"the plan would suspend {plan.suspensions} of {base} active Moodle users ({share:.0%}), more than "
            f"the allowed {max_share:.0%}. An empty or truncated {source.name} extract (year end, payroll change) "
            "usually causes this. Check the extract; if the suspensions are intended, trigger the run with "
            f"the parameter allow_mass_suspension=true (owner: {source.owner} / data engineer)"
        )

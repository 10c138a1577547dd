"""MIS people → Moodle users: compare with Moodle's state and decide what to write (pure).

Moodle's user ID number holds the MIS External ID. A person is matched through the stored link, else through
that ID number; an account holding the person's username or e-mail without the ID number is a conflict naming
it, never a second account (the rollover guide: set the ID number in Moodle to link them up). IDs are compared
trimmed and in any letter case, as validation keeps MIS IDs apart: an account whose ID number differs from the
External ID only so is a conflict naming it (people read them as one; Moodle would take a second account), and a
link is never taken for a person gone from the MIS while a variant of its ID is there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from school.guard import GUARD_SETTING
from school.validation import OWNER_MIS, login_of
from sync_common.mass_change import guard_verdict
from sync_common.moodle_rules import deleted_account_reason, is_deleted_account
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.validation import normalised_key

FLOW = "people"
OWNER_BOTH = f"{OWNER_MOODLE_ADMIN} / {OWNER_MIS}"
LEFT = "left the school (status 'left' in the MIS)"
GONE = "no longer in the MIS"
# Keys of plan entries that are ours, not Moodle's: removed before a write is sent.
PLAN_ONLY_KEYS = ("external_id", "action", "changed", "reason")


@dataclass
class UserPlan:
    """``creates``: create_users entries (+ external_id); ``updates``: update_users entries with only the
    changed fields (+ external_id, action, changed); ``deletes``: {id, external_id, reason};
    ``links``: (external_id, moodle user id) of accounts that exist; ``unlinks``: External IDs whose linked
    account is gone from Moodle."""

    creates: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    deletes: list[dict] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    unlinks: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    matched: int = 0

    @property
    def leaving(self) -> int:
        """Accounts this plan suspends or deletes: what the mass-change guard weighs."""
        return len(self.deletes) + sum(update["action"] == "suspended" for update in self.updates)


def _accounts(users: Iterable[dict]) -> str:
    return " and ".join(f"#{user['id']}" for user in users)


def _casefolded(value) -> str:
    return str(value or "").strip().casefold()


def plan_user_changes(people: Iterable[dict], mis_ids: Iterable[str], moodle_users: Iterable[dict],
                      links: Mapping[str, int], *, delete_users: bool, auth: str,
                      listed: Collection[str] = frozenset()) -> UserPlan:
    """Create, update, unsuspend, suspend or delete, one outcome per person.

    ``people``: the valid MIS people; ``mis_ids``: the External IDs of every MIS person, valid or not (a
    person the MIS still has is never treated as gone). A person who left, and a linked person no longer in
    the MIS, is deleted when ``delete_users``, otherwise suspended. A link to an account an administrator
    deleted (``is_deleted_account``: Moodle still answers its row) is dropped and the person matched again,
    with a warning naming the deleted account. ``listed``: a targeted run's External IDs (normalised), the only
    linked people it may take for gone; empty in a whole run.
    """
    users = {int(user["id"]): user for user in moodle_users}
    deleted = {user_id for user_id, user in users.items() if is_deleted_account(user)}
    users = {user_id: user for user_id, user in users.items() if user_id not in deleted}
    by_idnumber: dict[str, list[dict]] = {}
    by_login: dict[str, list[dict]] = {}
    for account in users.values():
        if idnumber := normalised_key(account.get("idnumber")):
            by_idnumber.setdefault(idnumber, []).append(account)
        for key in {_casefolded(account.get("username")), _casefolded(account.get("email"))} - {""}:
            by_login.setdefault(key, []).append(account)
    plan = UserPlan()
    seen: set[str | None] = set()
    in_mis = {normalised_key(external_id) for external_id in mis_ids}

    for person in people:
        external_id = str(person["external_id"])
        seen.add(normalised_key(external_id))
        linked = users.get(links.get(external_id, -1))
        if external_id in links and linked is None:
            plan.unlinks.append(external_id)  # deleted in Moodle by hand: match again by ID number
            if links[external_id] in deleted:
                plan.outcomes.append(Outcome(external_id, "warning", deleted_account_reason(
                    links[external_id], "the person is matched again by ID number, username and e-mail, or given a "
                    "new account (this record's other line)"), OWNER_MOODLE_ADMIN, FLOW))
        same_number = by_idnumber.get(normalised_key(external_id) or "", [])
        if linked is None and len(same_number) > 1:
            plan.outcomes.append(Outcome(
                external_id, "conflict", f"ambiguous match: Moodle users {_accounts(same_number)} all carry ID "
                f"number '{external_id}' (letter case and spaces aside); nothing was written to either. Keep the ID "
                "number on this person's account only", OWNER_MOODLE_ADMIN, FLOW))
            continue
        if linked is None and same_number and same_number[0]["idnumber"] != external_id:
            plan.outcomes.append(Outcome(
                external_id, "conflict", f"Moodle user #{same_number[0]['id']} has ID number "
                f"'{same_number[0]['idnumber']}', which differs from this person's External ID '{external_id}' only "
                "in letter case or spaces: correct the one that is wrong (the ID number in Moodle or the External ID "
                "in the MIS); no second account was made", OWNER_BOTH, FLOW))
            continue
        user = linked or (same_number[0] if same_number else None)
        login = login_of(person)
        assert login is not None, "a valid person has an e-mail at least"
        holders = {int(u["id"]): u for key in (login, _casefolded(person["email"])) for u in by_login.get(key, [])
                   if user is None or u["id"] != user["id"]}
        if person["status"] == "left":
            _plan_leaver(plan, external_id, user, LEFT, delete_users)
        elif user is None and holders:
            holder = next(iter(holders.values()))
            plan.outcomes.append(Outcome(
                external_id, "conflict", f"the username or e-mail is already used by Moodle user "
                f"{_accounts(holders.values())}, which has ID number '{holder.get('idnumber') or ''}': if that "
                f"account is this person's, set its ID number to '{external_id}' in Moodle (the rollover guide), "
                "otherwise correct the username or e-mail in the MIS; no second account was made", OWNER_BOTH, FLOW))
        elif user is None:
            plan.creates.append(new_account(person, auth))
        else:
            _plan_update(plan, person, login, user, holders)

    known = seen | in_mis
    for external_id, user_id in sorted(links.items()):
        if listed and normalised_key(external_id) not in listed:
            continue
        if normalised_key(external_id) not in known and user_id in users:
            _plan_leaver(plan, external_id, users[user_id], GONE, delete_users)
        elif normalised_key(external_id) not in seen and user_id in deleted:
            plan.unlinks.append(external_id)
    return plan


def new_account(person: dict, auth: str) -> dict:
    """The create_users entry (+ external_id) of a person without a Moodle account."""
    external_id = str(person["external_id"])
    return {"external_id": external_id, "username": login_of(person), "auth": auth,
            "firstname": person["first_name"], "lastname": person["last_name"],
            "email": str(person["email"]).strip(), "idnumber": external_id,
            **({"createpassword": 1} if auth == "manual" else {})}


def _plan_update(plan: UserPlan, person: dict, login: str, user: dict, holders: dict[int, dict]) -> None:
    external_id = str(person["external_id"])
    plan.links.append((external_id, int(user["id"])))
    plan.matched += 1
    wanted = {"firstname": person["first_name"], "lastname": person["last_name"],
              "email": str(person["email"]).strip(), "username": login, "idnumber": external_id}
    changes = {name: value for name, value in wanted.items()
               if (_casefolded(user.get(name)) != _casefolded(value) if name in ("email", "username")
                   else str(user.get(name) or "") != value)}
    notes = []
    for name in ("username", "email"):
        taken = [u for u in holders.values() if name in changes and _casefolded(u.get(name)) == _casefolded(
            changes[name])]
        if taken:
            notes.append(f"the new {name} is already used by Moodle user {_accounts(taken)}; {name} left unchanged")
            del changes[name]
    action = "updated"
    if user.get("suspended"):
        changes["suspended"] = 0
        action = "unsuspended"
    note = "; ".join(notes)
    if changes:
        plan.updates.append({"external_id": external_id, "id": int(user["id"]),
                             "action": "conflict" if note else action, "changed": sorted(changes),
                             **({"reason": note} if note else {}), **changes})
    elif note:
        plan.outcomes.append(Outcome(external_id, "conflict", note, OWNER_BOTH, FLOW))
    else:
        plan.outcomes.append(Outcome(external_id, "unchanged", flow=FLOW))


def _plan_leaver(plan: UserPlan, external_id: str, user: dict | None, why: str, delete_users: bool) -> None:
    if user is None:
        plan.outcomes.append(Outcome(external_id, "skipped", f"{why}; has no Moodle account", flow=FLOW))
        return
    plan.matched += 1
    if delete_users:
        plan.deletes.append({"external_id": external_id, "id": int(user["id"]),
                             "reason": f"{why}; deletion of users is allowed"})
    elif not user.get("suspended"):
        plan.links.append((external_id, int(user["id"])))
        plan.updates.append({"external_id": external_id, "id": int(user["id"]), "action": "suspended",
                             "changed": ["suspended"], "suspended": 1,
                             "reason": f"{why}; suspended, not deleted (deletion of users is not allowed)"})
    else:
        plan.links.append((external_id, int(user["id"])))
        plan.outcomes.append(Outcome(external_id, "unchanged", f"{why}; account already suspended (deletion of "
                                                               "users is not allowed)", flow=FLOW))


def check_user_guard(plan: UserPlan, max_share: float, min_records: int) -> str | None:
    """The guard's verdict on the plan: None, or why it stops the run."""
    return guard_verdict(plan.leaving, plan.matched, "suspend or delete {changes} of {base} linked Moodle users",
                         max_share, min_records, GUARD_SETTING)

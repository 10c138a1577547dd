"""The steps of the employees → Moodle users flow (F2), one function per DAG task.

Each step reads its inputs from the run directory and writes its result there, so that any
task can be re-run from the Airflow UI on its own. Return values are small XComs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import pandas as pd
from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import CONFIG_OWNER, Integration, PasswordPolicy
from psiber.employee_validation import COLUMNS, PSIBER, validate_employees
from psiber.psiber_db import (
    count_employees_by_payroll,
    delete_user_links,
    save_link_fingerprints,
    save_refusals,
    select_employees,
    select_refusals,
    select_user_links,
    select_watermark,
    upsert_user_links,
)
from psiber.user_plan import (
    PLAN_ONLY_KEYS,
    accounts_to_read,
    check_suspend_guard,
    fingerprint,
    look_ups_needed,
    new_account_entry,
    plan_user_changes,
    settled_employees,
)
from psiber.user_transform import build_target_users, is_active, rows_to_transform
from sync_common.employee_source import EmployeeSource
from sync_common.frames import frame_records, row_fingerprints
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.moodle_batches import (
    LOOKUP_CHUNK,
    chunks,
    input_var_batches,
    moodle_entry,
    send_isolating,
    users_by_field,
)
from sync_common.moodle_rules import DELETED_ACCOUNT_UPDATE_WARNING, deleted_account_reason
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome, mask_emails
from sync_common.read_back import every_record_answered
from sync_common.read_progress import MISSING, ReadProgress
from sync_common.refusals import RefusalStreak, SiteRefusesWritesError, quarantined, site_refusal
from sync_common.run_files import RunPath, read_frame, read_json, write_frame, write_json
from sync_common.step_outputs import step_file, write_outcomes
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)

# The employees this run read (ESS and the course status read them too), and what the users flow's steps leave
# behind (their outcomes; the plan's writes, what the apply made).
EMPLOYEES = "employees.parquet"
EXTRACTED, VALIDATED, TRANSFORMED, PLAN, APPLIED = (
    step_file(f"users.{step}") for step in ("extract", "validate", "transform", "plan", "apply"))
# Which linked accounts the Moodle look-up read: a full read (and when it started), and the employees left unread.
USERS_READ = "moodle_users_read.json"
USERS_FULL = "users_full"  # the watermark of the last full read of the linked accounts
# What the validation decided for the users flow's later steps (a full read or not, the settled employees), and how
# many settled employees the transform left out (how many of them active), for the plan's counts and guard.
SCOPE, SETTLED = "users_scope.json", "settled_users.json"


def extract_employees(integration: Integration, engine: Engine, run_dir: RunPath) -> dict:
    """The employees of the integration's payrolls; the rest of PSIber is counted as out of scope, and a
    configured payroll PSIber does not have is a warning for whoever maintains the integration file."""
    payrolls = None if integration.payrolls == "all" else integration.payrolls
    employees = select_employees(engine, payrolls)
    write_frame(run_dir / EMPLOYEES, employees)
    by_payroll = count_employees_by_payroll(engine)
    missing = sorted(set(payrolls or ()) - set(by_payroll))
    out_of_scope = sum(n for code, n in by_payroll.items() if payrolls is not None and code not in payrolls)
    write_outcomes(run_dir / EXTRACTED, [Outcome(
        f"payroll {code}", "warning", "the integration file lists this payroll, but PSIber has no payroll with this "
        "code: its employees cannot be synced", CONFIG_OWNER) for code in missing],
        {"users": {"extracted": len(employees), "out_of_scope": out_of_scope}})
    log.info("Extracted %d employees from payrolls %s; %d on other payrolls are out of scope", len(employees),
             integration.payrolls, out_of_scope)
    return {"extracted": len(employees), "out_of_scope": out_of_scope, "missing_payrolls": len(missing)}


def validate_extracted_employees(integration: Integration, run_dir: RunPath, source: EmployeeSource = PSIBER,
                                 engine: Engine | None = None, full: bool = False, now: int | None = None) -> dict:
    """Keep the valid employees; report the others one by one; stop if too many are bad.

    With the integration's database (``engine``), decide whether this run reads every linked account (``full``:
    asked for, or due every ``users.full_sync_every_days``) and which employees are settled
    (``user_plan.settled_employees``): on a night that is not a full read, their rows skip the row-wise rules (met
    unchanged before; the rules comparing rows still see them) and the users flow's later steps. Both are kept in
    ``SCOPE`` for those steps."""
    employees = read_frame(run_dir / EMPLOYEES)
    fingerprints = row_fingerprints(employees[[c for c in COLUMNS if c in employees.columns]],
                                    _row_salt(integration, source))
    settled: dict[int, str] = {}
    if engine is not None:
        full = _full_read_due(integration, engine, full, source, now)
        if not full and not source.listed:
            settled = settled_employees(employees["employee_id"], fingerprints, select_user_links(engine,
                                                                                                   integration.key))
    checked_before = employees["employee_id"].astype(int).isin(settled).to_numpy(dtype=bool)
    result = validate_employees(employees, integration.users.known_statuses, source, checked_before)
    valid = result.valid.assign(source_fingerprint=[fingerprints[position] for position in
                                                    employees.index.get_indexer(result.valid.index)])
    write_frame(run_dir / "valid_employees.parquet", valid)
    kept = set(valid["employee_id"].astype(int))
    if engine is not None:
        write_json(run_dir / SCOPE, {"full": full, "settled": {str(employee_id): username for employee_id, username
                                                                in settled.items() if employee_id in kept}})
    invalid = invalid_outcomes(((r.record, r.reasons, r.owner) for r in result.invalid), flow="users")
    write_outcomes(run_dir / VALIDATED, invalid)
    check_invalid_share(len(invalid), result.checked, integration.safety.max_invalid_share, "employees",
                        source.owner)
    return {"checked": result.checked, "invalid": len(invalid), "settled": len(settled)}


def _row_salt(integration: Integration, source: EmployeeSource) -> str:
    """What, beside an employee's row, decides its verdict and its target: a change of it settles no one."""
    return json.dumps([integration.users.model_dump(mode="json"), integration.pseudo_email_domain, source.name],
                      sort_keys=True)


def _full_read_due(integration: Integration, engine: Engine, asked: bool, source: EmployeeSource,
                   now: int | None) -> bool:
    """Whether this run reads every linked account: asked for, or ``users.full_sync_every_days`` after the last full
    read (a targeted run never does)."""
    started = int(time.time()) if now is None else now
    return not source.listed and (asked or started - select_watermark(engine, integration.key, USERS_FULL)
                                  >= integration.users.full_sync_every_days * 86_400)


def _scope(run_dir: RunPath) -> dict:
    """The validation's decisions (``SCOPE``): none taken (no settled employees) when it ran without a database."""
    return read_json(run_dir / SCOPE) if (run_dir / SCOPE).exists() else {"settled": {}}


def settled_of_run(run_dir: RunPath) -> dict[int, str]:
    """The employees the run's validation took as settled (``SCOPE``): employee id → their linked username."""
    return {int(employee_id): username for employee_id, username in _scope(run_dir)["settled"].items()}


def transform_employees(integration: Integration, run_dir: RunPath, source: EmployeeSource = PSIBER) -> dict:
    """The target users of the employees that are not settled (``SCOPE``); the settled ones are counted in
    ``SETTLED`` (how many, how many of them active), for the plan."""
    valid = read_frame(run_dir / "valid_employees.parquet")
    settled = settled_of_run(run_dir)
    built = rows_to_transform(valid, settled, integration.pseudo_email_domain)
    targets, outcomes = build_target_users(valid[built], integration, source)
    kept = valid[~built]
    write_json(run_dir / "target_users.json", frame_records(targets))
    write_json(run_dir / SETTLED, {"settled": len(kept),
                                   "active": int(is_active(kept["employment_status"], integration).sum())})
    write_outcomes(run_dir / TRANSFORMED, outcomes)
    return {"targets": len(targets), "settled": len(kept), "conflicts": sum(o.action == "conflict" for o in outcomes),
            "warnings": sum(o.action == "warning" for o in outcomes)}


_LOOKED_UP_BY = ("employee_id", "idnumber", "username", "email", "email_as_given")


def extract_moodle_users(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                         full: bool = False, source: EmployeeSource = PSIBER, now: int | None = None) -> dict:
    """Read only the Moodle users that concern this extract: by id the linked accounts that may need a write
    (``accounts_to_read``: every one on a full read, else those whose employee changed since Moodle last
    confirmed it, or left), then by ID number, username and e-mail only what the plan needs
    (``look_ups_needed``): a quiet night asks for nothing.

    A full read comes every ``users.full_sync_every_days`` (or when ``full``), for what an administrator changed
    in Moodle, as the validation decided (``SCOPE``); a targeted run reads its listed employees' accounts.
    Settled employees have no target: their accounts are not read. Each look-up's answer is kept as it comes
    (``read_progress``), so the task's retry after a flaky night asks Moodle only for the look-ups still missing."""
    started = int(time.time()) if now is None else now
    scope = _scope(run_dir)
    full = scope["full"] if "full" in scope else _full_read_due(integration, engine, full, source, started)
    targets = read_json(run_dir / "target_users.json")
    links = select_user_links(engine, integration.key)
    write_frame(run_dir / "user_links.parquet", links)
    write_frame(run_dir / "refusals.parquet", select_refusals(engine, integration.key))
    extracted = [] if full else read_frame(run_dir / EMPLOYEES)["employee_id"].astype(int)
    read, unread = accounts_to_read(targets, links, extracted, full, source)
    asked_for = [sorted(zip(map(int, links["employee_id"].tolist()), map(int, links["moodle_user_id"].tolist()),
                            strict=True)),
                 [[target[name] for name in _LOOKED_UP_BY] for target in targets], read]
    stamp = hashlib.sha256(json.dumps(asked_for).encode()).hexdigest()
    with ReadProgress(run_dir, "moodle-users", stamp) as progress:
        users = _look_up(integration, hook, progress, {"id": read})
        users |= _look_up(integration, hook, progress, look_ups_needed(targets, links, users, set(unread)))
        write_json(run_dir / "moodle_users.json", list(users.values()))
        progress.discard()
    write_json(run_dir / USERS_READ, {"full": full, "started": started, "unread": unread})
    log.info("Read %d of %d linked Moodle accounts (%s)", len(read), len(links), "full read" if full else
             "those whose employee changed or left")
    return {"moodle_users": len(users)}


def _look_up(integration: Integration, hook: MoodleHook, progress: ReadProgress,
             wanted: dict[str, list]) -> dict[int, dict]:
    """Moodle users by the values of each field, in chunks asked ``max_parallel_reads`` at a time (they mostly
    wait on Moodle); answers kept in ``progress``, where a retry finds them. Fails the try if any is missing."""
    lookups = {f"{field}-{number}": (field, list(chunk)) for field, values in wanted.items()
               for number, chunk in enumerate(chunks(values, LOOKUP_CHUNK))}
    users: dict[int, dict] = {}
    with ThreadPoolExecutor(integration.results.max_parallel_reads) as pool:
        asked = {key: pool.submit(hook.call, "core_user_get_users_by_field", field=field, values=chunk)
                 for key, (field, chunk) in lookups.items() if key not in progress.answers}
        try:
            for key in lookups:  # a retry asks only for what is missing
                answer = progress.answer(key, asked[key].result) if key in asked else progress.answers[key]
                users |= {} if answer is MISSING else {int(user["id"]): user for user in answer}
        finally:
            pool.shutdown(cancel_futures=True)  # a try that stopped (the site is down) asks no more
    progress.raise_if_incomplete()
    return users


def plan_users(integration: Integration, run_dir: RunPath, allow_mass_suspension: bool,
               retry_refused: bool = False, now: datetime | None = None, source: EmployeeSource = PSIBER) -> dict:
    targets = pd.DataFrame(read_json(run_dir / "target_users.json"))
    if targets.empty:
        targets = pd.DataFrame(columns=["employee_id", "employee_number", "idnumber", "username", "email",
                                        "suspended", "customfields"])
    plan = plan_user_changes(
        targets,
        read_json(run_dir / "moodle_users.json"),
        read_frame(run_dir / "user_links.parquet"),
        read_frame(run_dir / EMPLOYEES)["employee_id"].astype(int),
        passwords_by_email=integration.users.new_user_passwords.policy is PasswordPolicy.moodle_generated,
        refusals={} if retry_refused else _quarantined(integration, read_frame(run_dir / "refusals.parquet"), now),
        departed=integration.users.departed_employees,
        source=source,
        unread=_unread(run_dir),
    )
    settled = read_json(run_dir / SETTLED) if (run_dir / SETTLED).exists() else {"settled": 0, "active": 0}
    plan.active_matched += settled["active"]
    unchanged = settled["settled"] + sum(outcome.action == "unchanged" for outcome in plan.outcomes)
    write_json(run_dir / PLAN, {
        "creates": plan.creates, "updates": plan.updates, "links": plan.links, "unlinks": plan.unlinks,
        "outcomes": [outcome.to_dict() for outcome in plan.outcomes], "synced": plan.synced,
        "sources": _source_rows(targets, plan.synced), "counts": {"users": {"unchanged": unchanged}},
    })
    if not allow_mass_suspension:
        check_suspend_guard(plan, integration.safety.max_suspend_share, integration.safety.min_users_for_suspend_guard,
                            source)
    counts = {"create": len(plan.creates), "update": len(plan.updates), "suspend": plan.suspensions,
              "linked": len(plan.links), "quarantined": sum(o.action == "quarantined" for o in plan.outcomes),
              "unchanged": unchanged}
    log.info("Plan: %s", counts)
    return counts


def _source_rows(targets: pd.DataFrame, synced: dict[int, str | None]) -> dict[int, str]:
    """The source row (``source_fingerprint``) of each employee the plan leaves in sync, for its link to keep."""
    if "source_fingerprint" not in targets.columns:
        return {}
    return {int(employee_id): row for employee_id, row in zip(targets["employee_id"].tolist(),
                                                              targets["source_fingerprint"].tolist(), strict=True)
            if row and synced.get(int(employee_id))}


def _unread(run_dir: RunPath) -> set[int]:
    """The linked employees the Moodle look-up left unread (as synced); none from a look-up made before it said."""
    return set(read_json(run_dir / USERS_READ)["unread"]) if (run_dir / USERS_READ).exists() else set()


def _quarantined(integration: Integration, refusals: pd.DataFrame, now: datetime | None) -> dict[int, dict]:
    """Refusals still in quarantine (``sync_common.refusals.quarantined``), by employee id, as the plan takes them."""
    held = quarantined([{**row, "record_key": row["employee_id"]} for row in frame_records(refusals)],
                       integration.users.retry_refused_after_days, now)
    return {int(employee_id): {"fingerprint": row["fingerprint"], "reason": row["reason"], "owner": row["owner"],
                               "refused_at": row["first_refused_at"]} for employee_id, row in held.items()}


def _new_user_password_fields(integration: Integration, password: str | None) -> dict:
    if integration.users.new_user_passwords.policy is PasswordPolicy.initial_password:
        return {"password": password, "preferences": [{"type": "auth_forcepasswordchange", "value": 1}]}
    return {"createpassword": 1}


_moodle_entry = partial(moodle_entry, plan_only=PLAN_ONLY_KEYS)


# Refusals that concern the records sent; any other error code is the site's (password policy, capability).
_RECORD_LEVEL_ERRORS = {"invalidparameter", "dmlwriteexception", "invalidresponse"}


def _site_refusal(error: MoodleRequestError, what: str) -> SiteRefusesWritesError:
    if error.errorcode and "<" in error.errorcode:  # a password policy: Moodle sends its rules as HTML
        rules = re.sub(r"<[^>]+>", " ", error.errorcode).split()
        return SiteRefusesWritesError(
            f"Moodle refused the initial password of new users: {' '.join(rules)}. Put a password that meets the "
            f"site's password policy in the initial-password Connection (owner: PSIber setup / {OWNER_MOODLE_ADMIN})")
    return site_refusal(error, what)


def _holders(hook: MoodleHook, item: dict) -> list[dict]:
    """Moodle users other than the item's own that hold its username or e-mail, in any letter case.

    ``get_users_by_field`` compares e-mails case-sensitively on PostgreSQL while Moodle's uniqueness
    check does not, so e-mails are also searched with ``core_user_get_users`` (a case-insensitive
    LIKE, where "_" and "%" match anything: the answer is filtered here).
    """
    found = {int(user["id"]): user
             for user in users_by_field(hook, "username", [item["username"]] if item.get("username") else [])}
    if item.get("email"):
        answer = hook.call("core_user_get_users", criteria=[{"key": "email", "value": item["email"]}])
        found |= {int(user["id"]): user for user in answer.get("users", [])
                  if str(user.get("email", "")).casefold() == item["email"].casefold()}
    return [user for user_id, user in sorted(found.items()) if user_id != item.get("id")]


@dataclass
class _Refusals:
    """Why Moodle refused a record on its own data (``refuse``), and the refusal remembered for its quarantine.

    create_users is all-or-nothing and update_users may refuse a whole call for one value (and still apply the
    others): ``send_isolating`` splits a refused batch until the bad record stands alone, after reading back
    what Moodle in fact did. A refusal of the site's (password policy, capability) stops at once, since no
    record would pass, and so do records refused alike in a row (``streak``: sync_common.refusals), none of them
    remembered.
    """

    hook: MoodleHook
    outcomes: list[Outcome]
    refused: list[dict]
    source: EmployeeSource
    what: str = "write this record"
    streak: RefusalStreak = field(default_factory=lambda: RefusalStreak("create or update Moodle accounts"))

    def send(self, batch: list[dict], call: Callable[[list[dict]], object],
             recover: Callable[[list[dict]], list[dict]]) -> None:
        """Send a batch (``call`` writes it and accepts Moodle's answer), isolating the records Moodle refuses."""
        try:
            send_isolating(batch, call, lambda item, error: self.refusal(item, error.errorcode, error.moodle_message),
                           _RECORD_LEVEL_ERRORS, streak=self.streak, recover=recover)
        except MoodleRequestError as error:
            raise _site_refusal(error, self.what) from error

    def refusal(self, item: dict, errorcode: str | None, message: str) -> None:
        """One record Moodle refused on its own: blamed unless records refused alike show the site refuses."""
        self.streak.refused(errorcode, message, partial(self.refuse, item, message))

    def refuse(self, item: dict, message: str) -> None:
        """Say why Moodle refused one record (a clash with another account, else its data) and remember it."""
        holders = _holders(self.hook, item)
        owner = f"{self.source.owner} / {OWNER_MOODLE_ADMIN}"
        if holders:
            accounts = " and ".join(f"#{user['id']}" for user in holders)
            outcome = Outcome(item["employee_number"], "conflict",
                              f"Moodle refused it ({message}): its username or e-mail (in any letter case) is already "
                              f"used by Moodle user {accounts}; if that account is this employee's, set its ID number "
                              f"to '{item.get('idnumber', '')}', otherwise correct the e-mail in {self.source.name}",
                              owner)
        else:
            fields = ", ".join(item["changed"]) if "changed" in item else "names, e-mail, ID number, profile fields"
            outcome = Outcome(item["employee_number"], "failed",
                              f"Moodle refused to {self.what} ({message}) and no other account holds its username or "
                              f"e-mail: check this employee's {fields} in {self.source.name} against Moodle's "
                              "rules", owner)
        outcome = Outcome(outcome.record, outcome.action, mask_emails(outcome.reason), outcome.owner)
        self.outcomes.append(outcome)
        self.refused.append({"employee_id": item["employee_id"], "fingerprint": fingerprint(item),
                             "reason": outcome.reason, "owner": outcome.owner})


def _holds(user: dict, item: dict) -> bool:
    """Whether a Moodle user (as get_users_by_field answers) already holds an update's changes."""
    fields = {field["shortname"]: str(field.get("value") or "") for field in user.get("customfields") or []}
    for name in item["changed"]:
        if name == "customfields":
            if any(fields.get(f["type"], "") != f["value"] for f in item["customfields"]):
                return False
        elif name == "suspended":
            if bool(user.get("suspended")) != bool(item["suspended"]):
                return False
        elif str(user.get(name) or "").casefold() != str(item[name]).casefold():
            return False
    return True


def apply_user_changes(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                       password: str | None, holder: str, source: EmployeeSource = PSIBER) -> dict:
    """Write the plan to Moodle in batches; one refused record never fails its batch-mates.

    Holds the integration's write lock, so two runs never write at once. Users Moodle already
    has with our username and ID number (an earlier attempt, an overlapping run, a retried
    request that had gone through) are adopted, never created twice. Every planned record gets
    its outcome, also when the step stops half-way.
    """
    with integration_write_lock(engine, integration.key, holder):
        return _apply(integration, hook, run_dir, password, source)


def _apply(integration: Integration, hook: MoodleHook, run_dir: RunPath, password: str | None,
           source: EmployeeSource) -> dict:
    plan = read_json(run_dir / PLAN)
    created: list[tuple[int, int, str]] = []
    outcomes: list[Outcome] = []
    refused: list[dict] = []
    unlinked: list[int] = []
    written: list[int] = []  # employees whose account Moodle confirmed holds the plan's whole write
    extra = _new_user_password_fields(integration, password)

    def already_created(batch: Sequence[dict]) -> tuple[list[dict], list[dict]]:
        """The batch's users Moodle already has with our username and ID number, as create_users answers."""
        found = {user["username"]: user for user in users_by_field(hook, "username", [i["username"] for i in batch])}
        done = [item for item in batch
                if item["username"] in found and found[item["username"]].get("idnumber") == item["idnumber"]]
        return done, [{"id": found[item["username"]]["id"], "username": item["username"], "adopted": True}
                      for item in done]

    def accept_created(batch, answer):
        ids = {user["username"]: int(user["id"]) for user in answer}
        adopted = {user["username"] for user in answer if user.get("adopted")}
        cut = [item for item in batch if item["username"] not in ids]
        if cut:  # PHP's max_input_vars dropped them: they were never sent
            log.warning("Moodle answered %d of %d new users: the call was cut (lower moodle_max_input_vars to the "
                        "site's max_input_vars); sending the others again", len(batch) - len(cut), len(batch))
            sender.send(cut, create, adopt)
        for item in batch:
            if item["username"] in ids:
                created.append((item["employee_id"], ids[item["username"]], item["username"]))
                written.extend([] if item["username"] in adopted else [item["employee_id"]])
                sender.streak.accepted()
                outcomes.append(Outcome(item["employee_number"], "adopted", ADOPTED) if item["username"] in adopted
                                else Outcome(item["employee_number"], "created"))

    def create(batch):
        accept_created(batch, hook.call("core_user_create_users",
                                        users=[{**_moodle_entry(item), **extra} for item in batch]))

    def adopt(batch):
        done, answer = already_created(batch)
        accept_created(done, answer)
        return done

    def update(batch):
        accept_updated(batch, hook.call("core_user_update_users", users=[_moodle_entry(item) for item in batch]))

    def accept_updated(batch, answer):
        warned = {int(w["itemid"]): w for w in (answer or {}).get("warnings", []) if w.get("item") == "user"}
        for item in batch:
            if warned.get(item["id"], {}).get("warningcode") == DELETED_ACCOUNT_UPDATE_WARNING:
                account_deleted(item)
            elif item["id"] in warned:
                sender.refusal(item, warned[item["id"]].get("warningcode"), warned[item["id"]]["message"])
            else:
                sender.streak.accepted()
                written.append(item["employee_id"])
                outcomes.append(Outcome(item["employee_number"], item["action"],
                                        item.get("reason") or f"changed: {', '.join(item['changed'])}",
                                        f"{OWNER_MOODLE_ADMIN} / {source.owner}" if item["action"] == "conflict"
                                        else ""))

    def account_deleted(item: dict) -> None:
        """Moodle says an administrator deleted the account since it was read: the link goes, and an employee
        still to be active gets a new account in this run."""
        unlinked.append(item["employee_id"])
        target = None if item["action"] == "suspended" else targets().get(item["employee_id"])
        outcomes.append(Outcome(item["employee_number"], "warning", deleted_account_reason(
            item["id"], "a new account is made" if target else "nothing to write to it"), OWNER_MOODLE_ADMIN))
        if target:
            pending.append(new_account_entry(target))
        else:
            outcomes.append(Outcome(item["employee_number"], "skipped", f"not {item['action']}: its Moodle account "
                                    "was deleted by an administrator"))

    def targets() -> dict[int, dict]:
        return {int(target["employee_id"]): target for target in read_json(run_dir / "target_users.json")}

    def updated_anyway(batch):
        """update_users can fail a whole call yet apply part of it: read back what Moodle now holds."""
        now = {int(user["id"]): user for user in users_by_field(hook, "id", [item["id"] for item in batch])}
        done = [item for item in batch if item["id"] in now and _holds(now[item["id"]], item)]
        accept_updated(done, None)
        return done

    sender = _Refusals(hook, outcomes, refused, source)
    earlier, earlier_answer = already_created(plan["creates"])
    adopted_earlier = {item["username"] for item in earlier}  # a retried first load: thousands on each side
    pending = [item for item in plan["creates"] if item["username"] not in adopted_earlier]
    max_items, max_vars = integration.users.batch_size, integration.moodle_max_input_vars
    planned = [(item["employee_number"], "users") for item in plan["updates"] + plan["creates"]]
    try:  # updates first: suspending leavers matters more than creating newcomers
        with every_record_answered(planned, outcomes), sender.streak:
            accept_created(earlier, earlier_answer)
            sender.what = "update the account"
            for batch in input_var_batches(plan["updates"], max_items, max_vars, _moodle_entry):
                sender.send(batch, update, updated_anyway)
            sender.what = "create the account"
            for batch in input_var_batches(pending, max_items, max_vars,
                                           lambda item: {**_moodle_entry(item), **extra}):
                sender.send(batch, create, adopt)
    finally:  # what was written is recorded even when the step stops half-way
        write_json(run_dir / APPLIED, {"created_links": created, "refused": refused, "unlinked": unlinked,
                                       "written": written, "outcomes": [outcome.to_dict() for outcome in outcomes]})
    counts = Counter(outcome.action for outcome in outcomes)
    log.info("Applied: %s, %d Moodle calls", dict(counts), hook.calls_made)
    return {"created": counts["created"], "adopted": counts["adopted"],
            "failed": counts["failed"] + counts["conflict"], "moodle_calls": hook.calls_made}


def _confirmed(run_dir: RunPath, plan: dict, applied: dict) -> tuple[dict[int, str | None], int | None]:
    """What each read account is now known to hold (``UserPlan.synced``; a planned write Moodle did not confirm
    is read again next night), and the full read's start when this run read every linked account."""
    writes = {int(item["employee_id"]) for item in plan["updates"] + plan["creates"]}
    confirmed = set(applied.get("written", []))
    fingerprints = {int(employee_id): value if int(employee_id) not in writes or int(employee_id) in confirmed
                    else None for employee_id, value in plan.get("synced", {}).items()}
    read = read_json(run_dir / USERS_READ) if (run_dir / USERS_READ).exists() else {"full": False}
    return fingerprints, read["started"] if read["full"] else None


ADOPTED = ("Moodle already had this account with its username and ID number (an earlier attempt, another run, "
           "or made by hand): linked, not created again")



def record_user_links(integration: Integration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    """Record the links of matched and created users, and which records Moodle refused (or took),
    also after an apply that stopped half-way."""
    if not (run_dir / APPLIED).exists():
        return {"links": 0, "written": 0}
    plan = read_json(run_dir / PLAN)
    applied = read_json(run_dir / APPLIED)
    links = [tuple(link) for link in plan["links"] + applied["created_links"]]
    refused = {refusal["employee_id"] for refusal in applied["refused"]}
    accepted = [employee_id for employee_id, *_ in links if employee_id not in refused]
    relinked = {employee_id for employee_id, *_ in applied["created_links"]}
    unlinks = [employee_id for employee_id in plan.get("unlinks", []) + applied.get("unlinked", [])
               if employee_id not in relinked]
    with integration_write_lock(engine, integration.key, holder):
        delete_user_links(engine, integration.key, unlinks)
        written = upsert_user_links(engine, integration.key, links)
        save_refusals(engine, integration.key, applied["refused"], accepted)
        save_link_fingerprints(engine, integration.key, *_confirmed(run_dir, plan, applied),
                               sources={int(employee): row for employee, row in plan.get("sources", {}).items()})
    return {"links": len(links), "written": written, "refused": len(refused)}

"""The steps of the employees → Moodle users flow (F2), one function per DAG task.

Each step reads its inputs from the run directory and writes its result there, so that any
task can be re-run from the Airflow UI on its own. Return values are small XComs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from moodle.exceptions import MoodleRequestError
from moodle.hook import MoodleHook
from psiber.config import Integration, PasswordPolicy
from psiber.employee_validation import validate_employees
from psiber.psiber_db import select_employees, select_user_links, upsert_user_links
from psiber.user_plan import check_suspend_guard, plan_user_changes
from psiber.user_transform import build_target_users
from sync_common.errors import PermanentStepError
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.outcomes import OWNER_MOODLE_ADMIN, OWNER_PSIBER_HR, Outcome, mask_emails
from sync_common.run_files import read_frame, read_json, write_frame, write_json

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 200
_PLAN_ONLY_KEYS = ("employee_id", "employee_number", "action", "changed", "reason")


def users_by_field(hook: MoodleHook, field: str, values: Sequence) -> Iterator[dict]:
    """Moodle users whose ``field`` is one of ``values``, asked in chunks Moodle's input limits allow."""
    for chunk in chunks(values, LOOKUP_CHUNK):
        yield from hook.call("core_user_get_users_by_field", field=field, values=list(chunk))


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def extract_employees(integration: Integration, engine: Engine, run_dir: Path) -> dict:
    payrolls = None if integration.payrolls == "all" else integration.payrolls
    employees = select_employees(engine, payrolls)
    write_frame(run_dir / "employees.parquet", employees)
    log.info("Extracted %d employees from payrolls %s", len(employees), integration.payrolls)
    return {"extracted": len(employees)}


def validate_extracted_employees(integration: Integration, run_dir: Path) -> dict:
    """Keep the valid employees; report the others one by one; stop if too many are bad."""
    result = validate_employees(read_frame(run_dir / "employees.parquet"))
    write_frame(run_dir / "valid_employees.parquet", result.valid)
    invalid = invalid_outcomes(((r.employee_number, r.reasons, r.owner) for r in result.invalid), flow="users")
    write_json(run_dir / "invalid_employees.json", [outcome.to_dict() for outcome in invalid])
    check_invalid_share(len(invalid), result.checked, integration.safety.max_invalid_share, "employees",
                        OWNER_PSIBER_HR)
    return {"checked": result.checked, "invalid": len(invalid)}


def transform_employees(integration: Integration, run_dir: Path) -> dict:
    targets, outcomes = build_target_users(read_frame(run_dir / "valid_employees.parquet"), integration)
    write_json(run_dir / "target_users.json", targets.to_dict("records"))
    write_json(run_dir / "transform_outcomes.json", [outcome.to_dict() for outcome in outcomes])
    return {"targets": len(targets), "conflicts": sum(o.action == "conflict" for o in outcomes),
            "warnings": sum(o.action == "warning" for o in outcomes)}


def extract_moodle_users(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: Path) -> dict:
    """Read only the Moodle users that concern this extract: by link, ID number, username and e-mail."""
    targets = read_json(run_dir / "target_users.json")
    links = select_user_links(engine, integration.key)
    write_frame(run_dir / "user_links.parquet", links)
    wanted = {
        "id": sorted({int(value) for value in links["moodle_user_id"]}),
        "idnumber": sorted({t["idnumber"] for t in targets}),
        "username": sorted({t["username"] for t in targets}),
        "email": sorted({t["email"] for t in targets} | {t["email_as_given"] for t in targets}),
    }
    users: dict[int, dict] = {}
    for field, values in wanted.items():
        for user in users_by_field(hook, field, values):
            users[int(user["id"])] = user
    write_json(run_dir / "moodle_users.json", list(users.values()))
    return {"moodle_users": len(users)}


def plan_users(integration: Integration, run_dir: Path, allow_mass_suspension: bool) -> dict:
    targets = pd.DataFrame(read_json(run_dir / "target_users.json"))
    if targets.empty:
        targets = pd.DataFrame(columns=["employee_id", "employee_number", "idnumber", "username", "email",
                                        "suspended", "customfields"])
    plan = plan_user_changes(
        targets,
        read_json(run_dir / "moodle_users.json"),
        read_frame(run_dir / "user_links.parquet"),
        read_frame(run_dir / "employees.parquet")["employee_id"].astype(int),
        passwords_by_email=integration.users.new_user_passwords.policy is PasswordPolicy.moodle_generated,
    )
    write_json(run_dir / "user_plan.json", {
        "creates": plan.creates, "updates": plan.updates, "links": plan.links,
        "outcomes": [outcome.to_dict() for outcome in plan.outcomes],
    })
    if not allow_mass_suspension:
        check_suspend_guard(plan, integration.safety.max_suspend_share, integration.safety.min_users_for_suspend_guard)
    counts = {"create": len(plan.creates), "update": len(plan.updates), "suspend": plan.suspensions,
              "linked": len(plan.links)}
    log.info("Plan: %s", counts)
    return counts


def _new_user_password_fields(integration: Integration, password: str | None) -> dict:
    if integration.users.new_user_passwords.policy is PasswordPolicy.initial_password:
        return {"password": password, "preferences": [{"type": "auth_forcepasswordchange", "value": 1}]}
    return {"createpassword": 1}


def _moodle_entry(item: dict) -> dict:
    return {key: value for key, value in item.items() if key not in _PLAN_ONLY_KEYS}


class UnexplainedRefusalsError(PermanentStepError):
    """Moodle refuses record after record with no visible cause: a site rule, not the records."""


MAX_UNEXPLAINED_REFUSALS = 5


def _outcome_of_failure(hook: MoodleHook, item: dict, error: MoodleRequestError) -> tuple[Outcome, bool]:
    """Say why Moodle refused one record, and whether a cause was found.

    Production sites only answer "Invalid parameter value detected", so look for the usual
    cause: a username or e-mail another Moodle user already has.
    """
    clashes = [
        f"its {field} is already used by Moodle user #{user['id']}"
        for field in ("username", "email") if item.get(field)
        for user in hook.call("core_user_get_users_by_field", field=field, values=[item[field]])
        if user.get("id") != item.get("id")
    ]
    detail = "; ".join(clashes) or error.debuginfo or (
        "no clash with another user: check the site's rules (password policy for the initial password, "
        "characters allowed in usernames, required profile fields)")
    outcome = Outcome(item["employee_number"], "failed", mask_emails(f"Moodle refused it ({error.moodle_message}): "
                                                                     f"{detail}"),
                      f"{OWNER_MOODLE_ADMIN} / {OWNER_PSIBER_HR}")
    return outcome, bool(clashes or error.debuginfo)


class _Sender:
    """Sends batches, splitting a refused one until the bad record stands alone.

    create_users is all-or-nothing and update_users refuses a whole request for one bad
    value, so only splitting keeps batch-mates safe. A run of refusals with no visible cause
    stops the step: bisecting every batch against a site rule would cost thousands of calls.
    """

    def __init__(self, hook: MoodleHook, outcomes: list[Outcome]):
        self.hook, self.outcomes, self.unexplained = hook, outcomes, 0

    def send(self, batch: Sequence[dict], call: Callable[[Sequence[dict]], object],
             accept: Callable[[Sequence[dict], object], None],
             adopt: Callable[[Sequence[dict]], tuple[list[dict], object]] | None = None) -> None:
        """``adopt`` finds records of a refused batch that Moodle already has (a retried request
        that had in fact gone through): they are accepted as done, the others sent again."""
        try:
            answer = call(batch)
        except MoodleRequestError as error:
            done, answer = adopt(batch) if adopt else ([], None)
            if done:
                self.unexplained = 0
                accept(done, answer)
                rest = [item for item in batch if item not in done]
                if rest:
                    self.send(rest, call, accept, adopt)
            elif len(batch) > 1:
                middle = len(batch) // 2
                self.send(batch[:middle], call, accept, adopt)
                self.send(batch[middle:], call, accept, adopt)
            else:
                self._refused(batch[0], error)
            return
        self.unexplained = 0
        accept(batch, answer)

    def _refused(self, item: dict, error: MoodleRequestError) -> None:
        outcome, explained = _outcome_of_failure(self.hook, item, error)
        self.outcomes.append(outcome)
        self.unexplained = 0 if explained else self.unexplained + 1
        if self.unexplained >= MAX_UNEXPLAINED_REFUSALS:
            raise UnexplainedRefusalsError(
                f"Moodle refused {self.unexplained} records in a row with no clash to explain it "
                f"({error.moodle_message}); stopped so as not to try every record. Check the site's password "
                "policy against the initial password, username rules and required profile fields "
                f"(owner: {OWNER_MOODLE_ADMIN})") from error


def apply_user_changes(integration: Integration, hook: MoodleHook, run_dir: Path, password: str | None) -> dict:
    """Write the plan to Moodle in batches; one refused record never fails its batch-mates.

    Users this task created in an earlier attempt (a retry after a timeout) are found by
    username and ID number first, so a retry never creates them twice.
    """
    plan = read_json(run_dir / "user_plan.json")
    created, outcomes = [], []

    def already_created(batch: Sequence[dict]) -> tuple[list[dict], list[dict]]:
        """The batch's users Moodle already has with our username and ID number, as create_users answers."""
        found = {}
        for user in users_by_field(hook, "username", [item["username"] for item in batch]):
            found[user["username"]] = user
        done = [item for item in batch
                if item["username"] in found and found[item["username"]].get("idnumber") == item["idnumber"]]
        return done, [{"id": found[item["username"]]["id"], "username": item["username"]} for item in done]

    earlier, earlier_answer = already_created(plan["creates"])
    pending = [item for item in plan["creates"] if item not in earlier]
    extra = _new_user_password_fields(integration, password)

    def create(batch):
        return hook.call("core_user_create_users", users=[{**_moodle_entry(item), **extra} for item in batch])

    def accept_created(batch, answer, note=""):
        ids = {user["username"]: int(user["id"]) for user in answer}
        for item in batch:
            created.append((item["employee_id"], ids[item["username"]], item["username"]))
            outcomes.append(Outcome(item["employee_number"], "created", note))

    accept_created(earlier, earlier_answer, "created by an earlier attempt of this run")

    def update(batch):
        return hook.call("core_user_update_users", users=[_moodle_entry(item) for item in batch])

    def accept_updated(batch, answer):
        warned = {int(w["itemid"]): w for w in (answer or {}).get("warnings", []) if w.get("item") == "user"}
        for item in batch:
            warning = warned.get(item["id"])
            outcomes.append(
                Outcome(item["employee_number"], "failed", f"Moodle refused it: {mask_emails(warning['message'])}",
                        OWNER_MOODLE_ADMIN) if warning else
                Outcome(item["employee_number"], item["action"],
                        item.get("reason") or f"changed: {', '.join(item['changed'])}"))

    sender = _Sender(hook, outcomes)
    try:  # updates first: suspending leavers matters more than creating newcomers
        for batch in chunks(plan["updates"], integration.users.batch_size):
            sender.send(batch, update, accept_updated)
        for batch in chunks(pending, integration.users.batch_size):
            sender.send(batch, create, accept_created, adopt=already_created)
    finally:  # what was written is recorded even when the step stops half-way
        write_json(run_dir / "applied.json", {"created_links": created,
                                              "outcomes": [outcome.to_dict() for outcome in outcomes]})
    failed = sum(outcome.action == "failed" for outcome in outcomes)
    log.info("Applied: %d created, %d updates, %d failed, %d Moodle calls",
             len(created), len(plan["updates"]), failed, hook.calls_made)
    return {"created": len(created), "failed": failed, "moodle_calls": hook.calls_made}


def record_user_links(integration: Integration, engine: Engine, run_dir: Path) -> dict:
    """Record the links of matched and created users, also after an apply that stopped half-way."""
    if not (run_dir / "applied.json").exists():
        return {"links": 0, "written": 0}
    plan = read_json(run_dir / "user_plan.json")
    applied = read_json(run_dir / "applied.json")
    links = [tuple(link) for link in plan["links"] + applied["created_links"]]
    written = upsert_user_links(engine, integration.key, links)
    return {"links": len(links), "written": written}

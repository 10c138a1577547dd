"""The steps of the people → Moodle users flow, one function per DAG task (plan in user_plan.py)."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from school import mis_extract
from school.config import SchoolIntegration
from school.school_db import select_refusals, select_user_links
from school.step_files import (
    cut_by_max_input_vars,
    earlier_try,
    hold_back_refused,
    record_links,
    refusals_file,
    save_applied,
    save_plan,
)
from school.user_plan import FLOW, OWNER_BOTH, PLAN_ONLY_KEYS, check_user_guard, new_account, plan_user_changes
from school.validation import login_of
from sync_common.moodle_batches import input_var_batches, moodle_entry, send_isolating, users_by_field
from sync_common.moodle_rules import DELETED_ACCOUNT_UPDATE_WARNING, deleted_account_reason
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome, mask_emails
from sync_common.read_back import (
    READ_BACK,
    ReadingBack,
    every_record_answered,
    said,
    users_created,
    users_deleted,
    users_updated,
    warnings_of,
)
from sync_common.refusals import RefusalStreak, refused_record
from sync_common.run_files import RunPath, read_frame, read_json, write_json
from sync_common.step_outputs import step_file
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)
PLAN, APPLIED = step_file(f"{FLOW}.plan"), step_file(f"{FLOW}.apply")

# Refusals of one record's data; any other error code is the site's (a capability, the password policy).
_RECORD_ERRORS = {"invalidparameter", "dmlwriteexception", "invaliduser", "useradminodelete",
                  "usernotdeletederror"}


def read_moodle_users(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath) -> dict:
    """The Moodle users that concern the MIS: by link, by ID number (= External ID), username and e-mail."""
    people = read_frame(run_dir / mis_extract.valid("people")).to_dict("records")
    links = select_user_links(engine, integration.key)
    write_json(run_dir / "user_links.json", links)
    write_json(run_dir / refusals_file("user"), select_refusals(engine, "user", integration.key))
    wanted: dict[str, list] = {
        "id": sorted(set(links.values())), "idnumber": sorted(str(p["external_id"]) for p in people),
        "username": sorted({login for p in people if (login := login_of(p))}),
        "email": sorted({str(p["email"]).strip() for p in people if p.get("email")})}
    users = {int(user["id"]): user for field, values in wanted.items()
             for user in users_by_field(hook, field, values)}
    write_json(run_dir / "moodle_users.json", list(users.values()))
    return {"moodle_users": len(users)}


def plan_people(integration: SchoolIntegration, run_dir: RunPath, retry_refused: bool = False,
                now: datetime | None = None) -> dict:
    """The people plan; a person Moodle refused, unchanged since, is not sent again while in quarantine."""
    people = read_frame(run_dir / mis_extract.valid("people")).to_dict("records")
    in_mis = [str(i) for i in read_frame(run_dir / mis_extract.extracted("people"))["external_id"]]
    plan = plan_user_changes(people, in_mis,
                             read_json(run_dir / "moodle_users.json"), read_json(run_dir / "user_links.json"),
                             delete_users=integration.deletion.users, auth=integration.new_users.auth,
                             listed=mis_extract.listed_people(run_dir))
    held = hold_back_refused(run_dir, "user", plan, _record, PLAN_ONLY_KEYS, FLOW,
                             integration.retry_refused_after_days, retry_refused, now)
    safety = integration.safety
    counts = save_plan(run_dir, PLAN,
                       {"creates": plan.creates, "updates": plan.updates, "deletes": plan.deletes},
                       plan.outcomes, check_user_guard(plan, safety.max_change_share, safety.min_records_for_guard),
                       FLOW, links=plan.links, unlinks=plan.unlinks, quarantined=held)
    log.info("People plan: %s", counts)
    return counts


_moodle_entry = partial(moodle_entry, plan_only=PLAN_ONLY_KEYS)


def _record(item: dict) -> str:
    return item["external_id"]


def apply_people(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                 holder: str) -> dict:
    """Write the people plan under the integration's write lock: deletions and suspensions first, then the other
    updates, then new accounts; one refused record never fails its batch-mates, and each gets its outcome."""
    with integration_write_lock(engine, integration.key, holder):
        return _apply(integration, hook, run_dir)


def _apply(integration: SchoolIntegration, hook: MoodleHook, run_dir: RunPath) -> dict:
    """A batch whose answer was lost is read back before any of it is sent again (``ReadingBack``); a retry of
    the task keeps what its earlier try learnt from Moodle's answers and first reads back the records whose answers
    that try lost."""
    plan = read_json(run_dir / PLAN)
    earlier = earlier_try(run_dir, APPLIED)
    outcomes: list[Outcome] = []
    created: list[tuple[str, int]] = []
    deleted: list[str] = []
    refused_records: list[dict] = []
    earlier.carried(outcomes, created, deleted)
    creates = list(plan["creates"])
    max_items, max_vars = integration.batch_size, integration.moodle_max_input_vars

    def refuse(what: str):
        def refused(item: dict, error: MoodleRequestError) -> None:
            remember(item, Outcome(item["external_id"], "failed", mask_emails(
                f"Moodle refused to {what} ({error.moodle_message}); check this person's names, e-mail and "
                "username in the MIS against Moodle's rules"), OWNER_BOTH, FLOW))
        return refused

    def remember(item: dict, outcome: Outcome) -> None:
        outcomes.append(outcome)
        if "username" in item or "changed" in item:  # a create or an update: quarantined until it changes
            refused_records.append(refused_record(item["external_id"], item, PLAN_ONLY_KEYS, outcome))

    def delete(batch):
        hook.call("core_user_delete_users", userids=[item["id"] for item in batch])

    def accept_deleted(batch, answer):
        for item in batch:
            deleted.append(item["external_id"])
            outcomes.append(Outcome(item["external_id"], "deleted", said(item["reason"], answer), flow=FLOW))

    def update(batch):
        return hook.call("core_user_update_users", users=[_moodle_entry(item) for item in batch])

    def accept_updated(batch, answer):
        warned = {int(w["itemid"]): w for w in warnings_of(answer) if w.get("item") == "user"}
        for item in batch:
            if warned.get(item["id"], {}).get("warningcode") == DELETED_ACCOUNT_UPDATE_WARNING:
                account_deleted(item)
            elif item["id"] in warned:
                streak.refused(warned[item["id"]].get("warningcode"), warned[item["id"]]["message"],
                               partial(refused_change, item, warned[item["id"]]["message"]))
            else:
                streak.accepted()
                outcomes.append(Outcome(item["external_id"], item["action"],
                                        said(item.get("reason") or f"changed: {', '.join(item['changed'])}", answer),
                                        OWNER_BOTH if item["action"] == "conflict" else "", FLOW))

    def account_deleted(item: dict) -> None:
        """Moodle says an administrator deleted the account since it was read: the link goes (``deleted``), and a
        person to be kept as they are in the MIS gets a new account in this run."""
        deleted.append(item["external_id"])
        remake = "reason" not in item  # not a leaver's suspension, nor an update with a conflict of its own
        outcomes.append(Outcome(item["external_id"], "warning", deleted_account_reason(
            item["id"], "a new account is made (this record's other line)" if remake else
            "nothing is written to it; the next run matches the person again"), OWNER_MOODLE_ADMIN, FLOW))
        if remake:
            creates.append(new_account(people()[item["external_id"]], integration.new_users.auth))

    def people() -> dict[str, dict]:
        return {str(person["external_id"]): person
                for person in read_frame(run_dir / mis_extract.valid("people")).to_dict("records")}

    def refused_change(item: dict, message: str) -> None:
        remember(item, Outcome(item["external_id"], "failed", mask_emails(
            f"Moodle refused the change of {', '.join(item['changed'])} ({message})"), OWNER_BOTH, FLOW))

    def create(batch):
        return hook.call("core_user_create_users", users=[_moodle_entry(item) for item in batch])

    def accept_created(batch, answer):
        ids = {user["username"]: int(user["id"]) for user in answer}
        read = {user["username"] for user in answer if user.get("read_back")}
        for item in batch:
            if item["username"] in ids:
                created.append((item["external_id"], ids[item["username"]]))
                outcomes.append(Outcome(item["external_id"], "created",
                                        said("", READ_BACK if item["username"] in read else None), flow=FLOW))
            else:
                outcomes.append(cut_by_max_input_vars(item["external_id"], FLOW))

    updates = sorted(plan["updates"], key=lambda item: item["action"] != "suspended")
    steps = ((plan["deletes"], ReadingBack(delete, partial(users_deleted, hook), accept_deleted),
              lambda item: {"id": item["id"]}, "delete the account"),
             (updates, ReadingBack(update, partial(users_updated, hook), accept_updated), _moodle_entry,
              "update the account"),
             (creates, ReadingBack(create, partial(users_created, hook), accept_created), _moodle_entry,
              "create the account"))
    planned = [(item["external_id"], FLOW) for item in plan["deletes"] + plan["updates"] + plan["creates"]]
    streak = RefusalStreak("write Moodle accounts")
    try:
        with every_record_answered(planned, outcomes, in_doubt=lambda: {
                item["external_id"] for _, sender, _, _ in steps for item in sender.in_doubt}), streak:
            for items, sender, encode, what in steps:
                doubtful, items = earlier.split(items, lambda item: item["external_id"])
                sender.first(doubtful)
                for batch in input_var_batches(items, max_items, max_vars, encode):
                    send_isolating(batch, sender, refuse(what), _RECORD_ERRORS, streak=streak)
            for _, sender, _, _ in steps:
                sender.check()
    finally:  # what was written is recorded even when the step stops half-way
        counts = save_applied(run_dir, APPLIED, created, deleted, outcomes, refused_records)
    log.info("People applied: %s", counts)
    return counts


def record_user_links(integration: SchoolIntegration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    return record_links("user", PLAN, APPLIED, integration.key, engine, run_dir, holder)

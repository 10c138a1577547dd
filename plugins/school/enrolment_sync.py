"""The steps of the memberships → Moodle enrolments flow, one function per DAG task (plan in enrolment_plan.py).

A preview plans from the other flows' plans (new accounts and courses stand for themselves, ``new_id``); a run
plans from the links its earlier steps recorded.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from functools import partial

from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from school import class_sync, mis_extract, people_sync
from school.config import CONFIG_OWNER, SchoolIntegration
from school.course_reads import read_enrolled
from school.enrolment_plan import FLOW, check_enrolment_guard, new_id, plan_enrolments
from school.school_db import save_links, select_user_links
from school.step_files import EarlierTry, earlier_try, hold_for_guard, save_plan
from school.validation import OWNER_MIS
from sync_common.moodle_batches import input_var_batches, send_isolating
from sync_common.moodle_rules import DELETED_ACCOUNT_ERROR, deleted_account_reason
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.read_back import READ_BACK, ReadingBack, enrolled_roles, every_record_answered, said
from sync_common.refusals import SiteRefusesWritesError, site_refusal
from sync_common.run_files import RunPath, read_frame, read_json, write_json
from sync_common.step_outputs import step_file
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)

PLAN, APPLIED = step_file(f"{FLOW}.plan"), step_file(f"{FLOW}.apply")

_NO_MANUAL_METHOD = "wsnoinstance"
_COURSE_IN_MESSAGE = re.compile(r"\(id = (\d+)\)")
_RECORD_ERRORS = {_NO_MANUAL_METHOD, "invaliduser", DELETED_ACCOUNT_ERROR, "invalidparameter"}
_ROLE_NOT_ASSIGNABLE = "wsusercannotassign"


def _courses(run_dir: RunPath, preview: bool) -> dict[str, int | str]:
    """Provisioned class → Moodle course id (or ``new_id`` in a preview)."""
    plan = read_json(run_dir / class_sync.PLAN)
    courses: dict[str, int | str] = dict(plan["provisioned"])
    if preview:
        courses |= {item["class_external_id"]: new_id(item["class_external_id"]) for item in plan["creates"]}
    elif (run_dir / class_sync.APPLIED).exists():
        courses |= dict(read_json(run_dir / class_sync.APPLIED)["created_links"])
    return courses


def _released(run_dir: RunPath) -> dict[str, tuple[int, str]]:
    """Kept courses whose class left the MIS or is no longer provisioned → (course id, why)."""
    return {external_id: (item["id"], item["reason"])
            for external_id, item in read_json(run_dir / class_sync.PLAN)["released"].items()}


def read_enrolments(integration: SchoolIntegration, hook: MoodleHook, run_dir: RunPath) -> dict:
    """Who is enrolled, with which roles, in each provisioned course that existed before this run (one call
    each; a course made by this run has nobody yet), and in each kept course the sync no longer provisions when
    ``deletion.enrolments`` lets it take back its accounts' enrolments there (a course deleted by this run is
    not read).

    Each course's answer is kept as it comes (``course_reads``), so a retry of the task asks only for the
    courses still missing."""
    plan = read_json(run_dir / class_sync.PLAN)
    course_ids = set(plan["provisioned"].values())
    if integration.deletion.enrolments:
        course_ids |= {course_id for course_id, _ in _released(run_dir).values()}
    enrolled = read_enrolled(hook, run_dir, "school_enrolled", course_ids, "id,roles", _roles_by_user)
    return {"courses_read": len(enrolled), "enrolments": sum(len(users) for users in enrolled.values())}


def _roles_by_user(users: list[dict]) -> dict[str, list[int]]:
    """Moodle user id → role ids of everyone enrolled in one course."""
    return {str(user["id"]): [int(role["roleid"]) for role in user.get("roles", [])] for user in users}


def _users(integration: SchoolIntegration, engine: Engine, run_dir: RunPath, preview: bool) -> Mapping[str, int | str]:
    if not preview:
        return select_user_links(engine, integration.key)
    plan = read_json(run_dir / people_sync.PLAN)
    deleted = {item["external_id"] for item in plan["deletes"]}
    users: dict[str, int | str] = {external_id: user_id for external_id, user_id in plan["links"]
                                   if external_id not in deleted}
    return users | {item["external_id"]: new_id(item["external_id"]) for item in plan["creates"]}


def _no_account(run_dir: RunPath) -> dict[str, str]:
    """Why a person has no Moodle account: the people flow's problem outcome for them."""
    invalid = read_json(run_dir / mis_extract.INVALID)["outcomes"]
    reasons = {o["record"]: "invalid in the MIS (see the people flow)" for o in invalid if o["flow"] == "people"}
    for name in (people_sync.PLAN, people_sync.APPLIED):
        if (run_dir / name).exists():
            reasons |= {o["record"]: f"{o['action']} in the people flow: {o['reason']}"
                        for o in read_json(run_dir / name)["outcomes"] if o["action"] in ("conflict", "failed")}
    return reasons


def plan_enrolments_step(integration: SchoolIntegration, engine: Engine, run_dir: RunPath, allow_mass_changes: bool,
                         preview: bool) -> dict:
    people = read_frame(run_dir / mis_extract.extracted("people"))
    leavers = {str(row.external_id) for row in people.itertuples() if row.status == "left"}
    memberships = [m for m in read_frame(run_dir / mis_extract.valid("memberships")).to_dict("records")
                   if str(m["person_external_id"]) not in leavers]
    enrolled = {int(course): {int(user): roles for user, roles in users.items()}
                for course, users in read_json(run_dir / "school_enrolled.json").items()}
    plan = plan_enrolments(memberships, _courses(run_dir, preview), _users(integration, engine, run_dir, preview),
                           enrolled, {"student": integration.roles.student, "teacher": integration.roles.teacher},
                           delete_enrolments=integration.deletion.enrolments, no_account=_no_account(run_dir),
                           released=_released(run_dir), listed=mis_extract.listed_people(run_dir))
    guard = check_enrolment_guard(plan, integration.safety.max_change_share, integration.safety.min_records_for_guard)
    counts = save_plan(run_dir, PLAN,
                       {"enrols": plan.enrols, "unenrols": plan.unenrols, "unassigns": plan.unassigns},
                       plan.outcomes, guard, FLOW)
    hold_for_guard(run_dir, [PLAN], allow_mass_changes=allow_mass_changes, preview=preview)
    log.info("Enrolment plan: %s", counts)
    return counts


def apply_enrolments(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                     holder: str) -> dict:
    """Take back roles and enrolments (when allowed), then enrol, under the integration's write lock; a refused
    enrolment never fails its batch-mates, and a course without a manual enrolment method fails only its own; the
    enrolments of an account an administrator deleted since it was read are warnings, and its link goes."""
    with integration_write_lock(engine, integration.key, holder):
        return _apply(integration, hook, engine, run_dir)


def _apply(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath) -> dict:
    plan = read_json(run_dir / PLAN)
    outcomes: list[Outcome] = []
    deleted_accounts: set[int] = set()
    max_items, max_vars = integration.batch_size, integration.moodle_max_input_vars

    def refuse(item: dict, error: MoodleRequestError) -> None:
        if error.errorcode == DELETED_ACCOUNT_ERROR:  # not the person's, nor the MIS's: see _unlink_deleted
            deleted_accounts.add(item["userid"])
            outcomes.append(Outcome(item["record"], "warning", deleted_account_reason(
                item["userid"], "the next run gives the person a new account and enrols it"), OWNER_MOODLE_ADMIN,
                FLOW))
            return
        if error.errorcode == _NO_MANUAL_METHOD:
            reason = (f"Moodle course #{item['courseid']} has no enabled manual enrolment method: add or enable "
                      "'Manual enrolments' in the course; the enrolment is made by the next run")
            owner = OWNER_MOODLE_ADMIN
        else:
            reason, owner = f"Moodle refused it ({error.errorcode}: {error.moodle_message})", \
                f"{OWNER_MOODLE_ADMIN} / {OWNER_MIS}"
        outcomes.append(Outcome(item["record"], "failed", reason, owner, FLOW))

    def same_cause(error: MoodleRequestError, batch: list[dict]) -> list[dict]:
        """A course without a manual enrolment method fails every enrolment in it: its id is in the message. An
        account found deleted fails every enrolment of it (the message names no one: the first is found by halving
        the batch)."""
        if error.errorcode == DELETED_ACCOUNT_ERROR:
            return [item for item in batch if item["userid"] in deleted_accounts]
        found = _COURSE_IN_MESSAGE.search(error.moodle_message) if error.errorcode == _NO_MANUAL_METHOD else None
        return [item for item in batch if found and item["courseid"] == int(found.group(1))]

    def context(item: dict) -> dict:
        return {"roleid": item["roleid"], "userid": item["userid"], "contextlevel": "course",
                "instanceid": item["courseid"]}

    steps = (
        ("unassigns", "core_role_unassign_roles", "unassignments", context, "role_removed"),
        ("unenrols", "enrol_manual_unenrol_users", "enrolments",
         lambda item: {"userid": item["userid"], "courseid": item["courseid"]}, "unenrolled"),
        ("enrols", "enrol_manual_enrol_users", "enrolments",
         lambda item: {"roleid": item["roleid"], "userid": item["userid"], "courseid": item["courseid"]}, None),
    )
    planned = [(item["record"], FLOW) for item in plan["unassigns"] + plan["unenrols"] + plan["enrols"]]
    earlier = _earlier_try(run_dir, plan)
    earlier.carried(outcomes, [], [])
    senders: list[ReadingBack] = []
    try:
        with every_record_answered(planned, outcomes, _refused_by_site, in_doubt=lambda: {
                item["record"] for sender in senders for item in sender.in_doubt}):
            for key, function, parameter, encode, action in steps:
                def call(batch, function=function, parameter=parameter, encode=encode):
                    hook.call(function, **{parameter: [encode(item) for item in batch]})

                def accept(batch, answer, action=action):
                    outcomes.extend(Outcome(item["record"], action or item["action"],
                                            said(_why(item, integration), answer), flow=FLOW) for item in batch)

                sender = ReadingBack(call, partial(_done, hook, key), accept)
                senders.append(sender)
                doubtful, items = earlier.split(plan[key], lambda item: item["record"])
                sender.first(doubtful)
                for batch in input_var_batches(items, max_items, max_vars, encode):
                    send_isolating(batch, sender, refuse, _RECORD_ERRORS, same_cause)
            for sender in senders:
                sender.check()
    finally:
        _unlink_deleted(engine, integration, deleted_accounts)
        write_json(run_dir / APPLIED,
                   {"outcomes": [o.to_dict() for o in _one_per_membership(outcomes)]})
    counts = Counter(outcome.action for outcome in outcomes)
    log.info("Enrolments applied: %s", dict(counts))
    return dict(counts)


def _unlink_deleted(engine: Engine, integration: SchoolIntegration, user_ids: set[int]) -> None:
    """Moodle answered ``userdeleted``: an administrator deleted these accounts since the people flow read them.
    Their links go, so the next run's people flow gives the people new accounts, which it then enrols."""
    if user_ids:
        save_links(engine, "user", integration.key, [], [external_id for external_id, user_id in
                                                         select_user_links(engine, integration.key).items()
                                                         if user_id in user_ids])


def _earlier_try(run_dir: RunPath, plan: dict) -> EarlierTry:
    """What an earlier try left; a membership with two writes (a changed role) counts as answered only when both
    were (``role_changed``), else both are read back."""
    earlier = earlier_try(run_dir, APPLIED)
    writes = Counter(item["record"] for key in ("unassigns", "unenrols", "enrols") for item in plan[key])
    for record in [r for r, found in earlier.done.items() if writes[r] > 1 and found[0]["action"] != "role_changed"]:
        del earlier.done[record]
        earlier.in_doubt.add(record)
    return earlier


def _done(hook: MoodleHook, key: str, items: list[dict]) -> tuple[list[dict], str]:
    """The role removals, unenrolments or enrolments (``key``) Moodle already holds, read from its courses."""
    roles = enrolled_roles(hook, {item["courseid"] for item in items})

    def held(item: dict) -> bool:
        enrolled = roles[item["courseid"]]
        if key == "unenrols":
            return item["userid"] not in enrolled
        has_role = item["roleid"] in enrolled.get(item["userid"], set())
        return has_role if key == "enrols" else not has_role

    return [item for item in items if held(item)], READ_BACK


def _one_per_membership(outcomes: list[Outcome]) -> list[Outcome]:
    """A changed role is two writes (the new role added, the old one taken back) but one outcome."""
    removed = {o.record: o for o in outcomes if o.action == "role_removed"}
    merged = []
    for outcome in outcomes:
        if outcome.action == "role_removed" and any(o.record == outcome.record and o is not outcome
                                                    for o in outcomes):
            continue
        if outcome.record in removed and outcome is not removed[outcome.record] and outcome.action == "role_added":
            outcome = Outcome(outcome.record, "role_changed", f"{outcome.reason}; {removed[outcome.record].reason}",
                              flow=FLOW)
        merged.append(outcome)
    return merged


def _why(item: dict, integration: SchoolIntegration) -> str:
    role = "student" if item.get("roleid") == integration.roles.student else "editing teacher"
    if "reason" in item:
        return item["reason"]
    return f"as {role}" if item.get("action") == "enrolled" else f"{role} role added"


def _refused_by_site(error: MoodleRequestError) -> Exception:
    if error.errorcode == _ROLE_NOT_ASSIGNABLE:
        return SiteRefusesWritesError(
            f"Moodle refused to assign a role ({error.moodle_message}): check roles.student / roles.teacher in the "
            "integration file against the site's role ids, and that the web-service user may assign them (Define "
            f"roles > Allow role assignments); owner: {OWNER_MOODLE_ADMIN} / {CONFIG_OWNER}")
    return site_refusal(error)

"""The steps of the classes → Moodle courses flow, one function per DAG task (plan in course_plan.py)."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from school import mis_extract
from school.config import CONFIG_OWNER, CourseDeletion, SchoolIntegration
from school.course_plan import FLOW, PLAN_ONLY_KEYS, check_course_guard, plan_course_changes, released_courses
from school.course_reads import read_enrolled
from school.people_sync import PLAN as PEOPLE_PLAN
from school.school_db import select_course_links, select_refusals
from school.step_files import (
    EarlierTry,
    cut_by_max_input_vars,
    earlier_try,
    hold_back_refused,
    record_links,
    refusals_file,
    save_applied,
    save_plan,
)
from school.validation import OWNER_MIS
from sync_common.moodle_batches import input_var_batches, moodle_entry, send_isolating
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.read_back import READ_BACK, ReadingBack, courses_now, every_record_answered, said, warnings_of
from sync_common.refusals import RefusalStreak, refused_record
from sync_common.run_files import RunPath, read_frame, read_json, write_json
from sync_common.step_outputs import step_file
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)
PLAN, APPLIED = step_file(f"{FLOW}.plan"), step_file(f"{FLOW}.apply")

# create_courses refusals of one course's data (names taken, a category gone, a blank name).
_RECORD_ERRORS = {"shortnametaken", "courseidnumbertaken", "errorcatcontextnotvalid", "errorinvalidparam",
                  "invalidparameter"}


def _mis_ids(run_dir: RunPath) -> list[str]:
    return [str(external_id) for external_id in read_frame(run_dir / mis_extract.extracted("classes"))["external_id"]]


def read_moodle_courses(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath) -> dict:
    """Moodle's courses and categories (one call each), and, when only empty courses may be deleted, who is
    still enrolled in each course the sync no longer provisions: one user is enough to keep it, unless the sync
    may take back its own accounts' enrolments (``deletion.enrolments``), when everyone is read. Each course's
    answer is kept as it comes, so a retry asks only for the courses still missing."""
    links = select_course_links(engine, integration.key)
    courses = hook.call("core_course_get_courses")
    categories = hook.call("core_course_get_categories")
    candidates: set[int] = set()
    if integration.deletion.courses is CourseDeletion.delete_only_empty:
        existing = {int(course["id"]) for course in courses}
        classes = read_frame(run_dir / mis_extract.valid("classes")).to_dict("records")
        candidates = {links[external_id] for external_id in released_courses(classes, _mis_ids(run_dir), links,
                                                                              integration)} & existing
    write_json(run_dir / "course_links.json", links)
    write_json(run_dir / refusals_file("course"), select_refusals(engine, "course", integration.key))
    write_json(run_dir / "school_moodle_courses.json", courses)
    write_json(run_dir / "school_categories.json", categories)
    enrolled = read_enrolled(hook, run_dir, "released_enrolled", candidates, "id", _user_ids,
                             limit=0 if integration.deletion.enrolments else 1)
    return {"moodle_courses": len(courses), "categories": len(categories), "released_read": len(enrolled)}


def _user_ids(users: list[dict]) -> list[int]:
    return [int(user["id"]) for user in users]


def _mis_accounts(run_dir: RunPath) -> set[int]:
    """The Moodle accounts the MIS provisions, as the people plan has them (those it deletes included)."""
    plan = read_json(run_dir / PEOPLE_PLAN)
    return {int(user_id) for _, user_id in plan["links"]} | {int(item["id"]) for item in plan["deletes"]}


def plan_classes(integration: SchoolIntegration, run_dir: RunPath, retry_refused: bool = False,
                 now: datetime | None = None) -> dict:
    """The class plan; a class Moodle refused, unchanged since, is not sent again while in quarantine."""
    plan = plan_course_changes(
        read_frame(run_dir / mis_extract.valid("classes")).to_dict("records"), _mis_ids(run_dir),
        read_json(run_dir / "school_moodle_courses.json"), read_json(run_dir / "school_categories.json"),
        read_json(run_dir / "course_links.json"), integration,
        {int(k): v for k, v in read_json(run_dir / "released_enrolled.json").items()}, _mis_accounts(run_dir),
        targeted=bool(mis_extract.listed_people(run_dir)))
    held = hold_back_refused(run_dir, "course", plan, _record, PLAN_ONLY_KEYS, FLOW,
                             integration.retry_refused_after_days, retry_refused, now)
    safety = integration.safety
    counts = save_plan(run_dir, PLAN,
                       {"creates": plan.creates, "updates": plan.updates, "deletes": plan.deletes},
                       plan.outcomes, check_course_guard(plan, safety.max_change_share, safety.min_records_for_guard),
                       FLOW, links=plan.links, unlinks=plan.unlinks, released=plan.released,
                       provisioned={external_id: course_id for external_id, course_id in plan.links
                                    if external_id not in plan.released}, quarantined=held)
    log.info("Class plan: %s", counts)
    return counts


_moodle_entry = partial(moodle_entry, plan_only=PLAN_ONLY_KEYS)


def _record(item: dict) -> str:
    return item["class_external_id"]


def apply_classes(integration: SchoolIntegration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                  holder: str) -> dict:
    """Write the class plan under the integration's write lock: deletions, then renames, then new courses; a
    refused course never fails its batch-mates, and each gets its outcome."""
    with integration_write_lock(engine, integration.key, holder):
        return _apply(integration, hook, run_dir)


# Moodle deletes a course with everything in it, one course after another, and answers only at the end: on a live
# site 32 courses with some 1,400 enrolments took 61.8 s, past the hook's 60 s timeout. So a call deletes at most
# DELETION_WEIGHT_PER_CALL courses' worth (some 2 s each on that site), a course counting 1 more for every
# ENROLMENTS_PER_WEIGHT enrolments known in it (``released_enrolled.json``, read for delete_only_empty).
DELETION_WEIGHT_PER_CALL = 4
ENROLMENTS_PER_WEIGHT = 50
_GONE = "unknowncourseidnumber"  # delete_courses' warning for a course Moodle does not have (any more)


def deletion_batches(deletes: list[dict], enrolled: dict[int, int]) -> list[list[dict]]:
    """Course deletions in calls that a normal site answers well within the timeout (``enrolled``: course id →
    enrolments known in it); a heavy course goes alone."""
    batches: list[list[dict]] = []
    weight = 0.0
    for item in deletes:
        own = 1 + enrolled.get(int(item["id"]), 0) / ENROLMENTS_PER_WEIGHT
        if not batches or weight + own > DELETION_WEIGHT_PER_CALL:
            batches.append([])
            weight = 0.0
        batches[-1].append(item)
        weight += own
    return batches


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
    max_items, max_vars = integration.batch_size, integration.moodle_max_input_vars

    def per_item(function: str, key: str, encode):
        """update/delete_courses work item by item and answer warnings for the items they refused."""
        return lambda batch: hook.call(function, **{key: [encode(item) for item in batch]})

    def accept_per_item(done):
        def accept(batch, answer):
            warned = {int(w["itemid"]): w for w in warnings_of(answer) if w.get("item") == "course"}
            for item in batch:
                warning = warned.get(item["id"])
                if warning is None:
                    streak.accepted()
                    done(item, answer)
                elif done is deleted_course and warning["warningcode"] == _GONE:
                    done(item, f"Moodle no longer has it ({warning['message']}): an earlier call deleted it")
                else:
                    streak.refused(warning["warningcode"], warning["message"], partial(
                        failed, item, Outcome(item["class_external_id"], "failed", f"Moodle refused it "
                                              f"({warning['warningcode']}: {warning['message']})",
                                              f"{OWNER_MOODLE_ADMIN} / {OWNER_MIS}", FLOW)))
        return accept

    def deleted_course(item, answer):
        deleted.append(item["class_external_id"])
        reason = said(f"Moodle course #{item['id']}: {item['reason']}", answer)
        if isinstance(answer, str) and answer != READ_BACK:
            reason = f"{reason}; {answer}"
        outcomes.append(Outcome(item["class_external_id"], "deleted", reason, flow=FLOW))

    def updated_course(item, answer):
        outcomes.append(Outcome(item["class_external_id"], item["action"],
                                said(item.get("reason") or f"changed: {', '.join(item['changed'])}", answer),
                                flow=FLOW))

    def create(batch):
        return hook.call("core_course_create_courses", courses=[_moodle_entry(item) for item in batch])

    def accept_created(batch, answer):
        ids = {course["shortname"]: int(course["id"]) for course in answer}
        read = {course["shortname"] for course in answer if course.get("read_back")}
        for item in batch:
            course_id = ids.get(item["shortname"])
            if course_id is not None:
                created.append((item["class_external_id"], course_id))
                outcomes.append(Outcome(item["class_external_id"], "created", said(
                    f"Moodle course #{course_id}", READ_BACK if item["shortname"] in read else None), flow=FLOW))
            else:
                outcomes.append(cut_by_max_input_vars(item["class_external_id"], FLOW))

    def refused(item: dict, error: MoodleRequestError) -> None:
        owner = f"{OWNER_MOODLE_ADMIN} / {CONFIG_OWNER}" if error.errorcode == "errorcatcontextnotvalid" \
            else f"{OWNER_MOODLE_ADMIN} / {OWNER_MIS}"
        failed(item, Outcome(item["class_external_id"], "failed", f"Moodle refused to create the course "
                             f"({error.errorcode}: {error.moodle_message})", owner, FLOW))

    def failed(item: dict, outcome: Outcome) -> None:
        outcomes.append(outcome)
        if "shortname" in item or "changed" in item:  # a create or an update: quarantined until it changes
            refused_records.append(refused_record(item["class_external_id"], item, PLAN_ONLY_KEYS, outcome))

    deleter = ReadingBack(per_item("core_course_delete_courses", "courseids", lambda item: item["id"]),
                          partial(courses_deleted, hook), accept_per_item(deleted_course))
    updater = ReadingBack(per_item("core_course_update_courses", "courses", _moodle_entry),
                          partial(courses_updated, hook), accept_per_item(updated_course))
    creator = ReadingBack(create, partial(courses_created, hook), accept_created)
    senders = (deleter, updater, creator)
    planned = [(item["class_external_id"], FLOW) for item in plan["deletes"] + plan["updates"] + plan["creates"]]
    streak = RefusalStreak("write Moodle courses")
    try:
        with every_record_answered(planned, outcomes, in_doubt=lambda: {
                item["class_external_id"] for sender in senders for item in sender.in_doubt}), streak:
            deletes, updates, creates = (_first(earlier, sender, plan[key]) for sender, key in zip(
                senders, ("deletes", "updates", "creates"), strict=True))
            for batch in deletion_batches(deletes, _enrolments_known(run_dir)):
                deleter(batch)
            for batch in input_var_batches(updates, max_items, max_vars, _moodle_entry):
                updater(batch)
            for batch in input_var_batches(creates, max_items, max_vars, _moodle_entry):
                send_isolating(batch, creator, refused, _RECORD_ERRORS, streak=streak)
            for sender in senders:
                sender.check()
    finally:
        counts = save_applied(run_dir, APPLIED, created, deleted, outcomes, refused_records)
    log.info("Classes applied: %s", counts)
    return counts


def _first(earlier: EarlierTry, sender: ReadingBack, items: list[dict]) -> list[dict]:
    """Read back the items whose answers an earlier try lost; the items still to send."""
    doubtful, rest = earlier.split(items, lambda item: item["class_external_id"])
    sender.first(doubtful)
    return rest


def _enrolments_known(run_dir: RunPath) -> dict[int, int]:
    path = run_dir / "released_enrolled.json"
    return {int(course): len(users) for course, users in read_json(path).items()} if path.exists() else {}


def courses_deleted(hook: MoodleHook, items: list[dict]) -> tuple[list[dict], str]:
    """The deletions Moodle has done: it no longer has the course."""
    now = {int(course["id"]) for course in courses_now(hook, [item["id"] for item in items])}
    return [item for item in items if item["id"] not in now], READ_BACK


def courses_updated(hook: MoodleHook, items: list[dict]) -> tuple[list[dict], str]:
    """The updates whose names Moodle already holds."""
    now = {int(course["id"]): course for course in courses_now(hook, [item["id"] for item in items])}
    return [item for item in items if item["id"] in now
            and all(now[item["id"]].get(name) == item[name] for name in item["changed"])], READ_BACK


def courses_created(hook: MoodleHook, items: list[dict]) -> tuple[list[dict], list[dict]]:
    """The new courses Moodle already has, by their ID number and short name, as create_courses answers."""
    by_idnumber = {(course.get("idnumber"), course["shortname"]): course for course in courses_now(hook)}
    done = [item for item in items if (item["idnumber"], item["shortname"]) in by_idnumber]
    return done, [{"id": int(by_idnumber[item["idnumber"], item["shortname"]]["id"]), "shortname": item["shortname"],
                   "read_back": True} for item in done]


def record_course_links(integration: SchoolIntegration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    return record_links("course", PLAN, APPLIED, integration.key, engine, run_dir, holder)

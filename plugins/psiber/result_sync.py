"""The steps of the Moodle results → PSIber completions and attempts flow (F4).

Per user and course (sites without Report Builder reports): grades are read per course for all
users at once (one call per course); completions only for the users Moodle saw active or graded
since the last run's watermark; completion times only for completions PSIber does not hold yet.
Both reads are split into batches that mapped tasks, and so several workers, share.

With an enrolment-results report (``moodle_reports``, ``psiber.result_reports``): a full read
takes every enrolment's completion from the report's pages, a night the completions since the
watermark, and the user-access report (if configured) says who was active. Completions are then
read per user for the active learners only, and grades per course only for the courses of the
enrolments read (``results_from_report``: completions first, grades after). A grade changed
without a completion or the learner's activity (a regrade) waits for the next full read
(``results.full_sync_every_days``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import pandas as pd
from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from moodle_provider.report_builder import token_user_time_zone
from psiber.config import Integration
from psiber.course_plan import NO_COMPLETION_CRITERIA, OWNER_TRAINING_ADMIN
from psiber.course_sync import MOODLE_COURSES
from psiber.moodle_validation import COMPLETION_COLUMNS, GRADE_COLUMNS, validate_completions, validate_course_grades
from psiber.psiber_db import (
    save_result_parts,
    select_courses,
    select_moodle_completions,
    select_picklists,
    select_user_links,
    select_watermark,
)
from psiber.result_plan import plan_results, without_empty_range
from psiber.result_read_tasks import courses_per_grade_read, results_from_report, users_per_completion_read
from psiber.result_reports import completion_entries, read_active_users, read_enrolments
from sync_common.errors import PermanentStepError
from sync_common.invalid_records import check_invalid_share, invalid_outcomes
from sync_common.moodle_batches import chunks, users_by_field
from sync_common.moodle_rules import SITE_FORMAT
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.read_progress import MISSING, ReadProgress
from sync_common.run_files import RunPath, owned_folder, read_json, sorted_files, write_json
from sync_common.step_outputs import step_file, write_outcomes

log = logging.getLogger(__name__)

_NO_CRITERIA_ERROR = "nocriteriaset"
# The watermark is set this far before the run's start, so clock skew between Airflow and Moodle
# or a change made while the run read cannot slip through; re-reading the overlap adds nothing.
WATERMARK_OVERLAP_SECONDS = 3600
# The linked Moodle users alone, for the grade-reading tasks: each of them would otherwise parse every link's
# employee id and number in learners.json (some 60 tasks a night at 10,000 employees).
LINKED_USERS = "linked_users.json"
# The learners this run reads results of (the course status reads them too), and what the results flow's steps
# leave behind (outcomes and counts; the plan's attempts and completions).
LEARNERS = "learners.json"
PLAN, LOADED = step_file("results.plan"), step_file("results.load")
# The plan's attempts and completions, a part per group of courses (``PLAN`` lists them, with the outcomes).
PLAN_PARTS = "results_plan"
# Grade and completion rows validated and planned at once. At 20,000 employees × 600 courses the step's peak was
# 403 MiB and 8 s of CPU with this budget, 428 MiB with twice as many rows and 387 MiB, 13 s with half.
ROWS_PER_GROUP = 20_000
# The completions the enrolment-results report lists, among the per-user completion reads' batches.
REPORTED_COMPLETIONS = "completions/report.json"


class ResultPicklistError(PermanentStepError):
    """The configured pass or fail result is not a value of PSIber's result picklist."""


def find_changed_learners(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                          full: bool, now: int | None = None) -> dict:
    """Linked Moodle users active since the watermark; all of them on a first or full run.

    A full run comes by itself every ``results.full_sync_every_days``: it picks up what no
    activity shows (a teacher completing a learner by hand, completions cron aggregated late).
    ``now`` is the run's clock (the moment this read starts unless given): the later steps take
    the date of sync, the watermark and what counts as "in the future" from it alone.

    With reports, who was active comes from the user-access report, and the enrolment-results
    report's completions (all of them on a full run, else those since the watermark) are kept
    as a completion batch (``REPORTED_COMPLETIONS``); a full run then needs no activity at all.
    """
    started = int(time.time()) if now is None else now
    stored = select_watermark(engine, integration.key, "results")
    last_full = select_watermark(engine, integration.key, "results_full")
    full = full or started - last_full >= integration.results.full_sync_every_days * 86_400
    watermark = 0 if full else stored
    links = select_user_links(engine, integration.key)
    user_ids = sorted(int(value) for value in links["moodle_user_id"])
    moodle_courses = [c for c in read_json(run_dir / MOODLE_COURSES) if c.get("format") != SITE_FORMAT]
    reports = integration.moodle_reports
    zone = token_user_time_zone(hook) if reports and (reports.enrolment_results or reports.user_access) else None
    from_report = results_from_report(integration)
    if from_report and full:
        active = []  # the report lists every enrolment
    elif zone and reports and reports.user_access and watermark:  # a full read asks everyone's last access
        linked = set(user_ids)
        active = sorted({row.userid for row in read_active_users(hook, reports.user_access, watermark, zone)
                         if row.userid in linked})
    else:
        active = [int(user["id"])
                  for user in users_by_field(hook, "id", user_ids, parallel=integration.results.max_parallel_reads)
                  if int(user.get("lastaccess") or 0) > watermark]
    if zone and reports and reports.enrolment_results:
        rows = read_enrolments(hook, reports.enrolment_results, watermark, zone)
        entries = completion_entries(rows, {str(c["shortname"]): int(c["id"]) for c in moodle_courses}, user_ids)
        _drop_times_held(entries, integration, engine, links)
        owned_folder(run_dir / "completions")
        write_json(run_dir / REPORTED_COMPLETIONS, {"completions": entries, "outcomes": []})
        log.info("Report %d: %d enrolments of linked users (%s)", reports.enrolment_results, len(entries),
                 "completed since the watermark" if watermark else "all")
    write_json(run_dir / LEARNERS, {
        "started": started, "watermark": watermark, "stored_watermark": stored, "full": full, "active": active,
        "course_ids": [int(c["id"]) for c in moodle_courses], "from_report": from_report,
        "links": {int(user_id): [int(employee_id), number] for user_id, employee_id, number in zip(
            links["moodle_user_id"].tolist(), links["employee_id"].tolist(), links["employee_number"].tolist(),
            strict=True)},
    })
    write_json(run_dir / LINKED_USERS, {"started": started, "user_ids": user_ids})
    log.info("%d of %d linked Moodle users active since %s", len(active), len(user_ids),
             datetime.fromtimestamp(watermark, UTC).isoformat() if watermark else "ever")
    return {"linked": len(user_ids), "active": len(active), "watermark": watermark, "full": full}


def _drop_times_held(entries: list[dict], integration: Integration, engine: Engine, links: pd.DataFrame) -> None:
    """As the per-user reads do, a completion PSIber holds is not dated again by Moodle's completion time (a regrade
    of it is dated by its grading time)."""
    employee_of = dict(zip(map(int, links["moodle_user_id"].tolist()), map(int, links["employee_id"].tolist()),
                           strict=True))
    employees = sorted({employee_of[int(e["userid"])] for e in entries if e["completed"]})
    held = select_moodle_completions(engine, integration.key, employees)
    for entry in entries:
        if (employee_of[int(entry["userid"])], int(entry["courseid"])) in held:
            entry["timecompleted"] = None


def grade_read_batches(integration: Integration, run_dir: RunPath) -> list[list[int]]:
    """Course ids in batches, one mapped task each (small XCom: ids only).

    From a report, only the courses of the enrolments read (those the report shows no course total
    for have no grade to read), and the run's course list says so for the course status.
    """
    learners = read_json(run_dir / LEARNERS)
    if learners.get("from_report"):
        entries = _batches(run_dir, "completions", "completions")[0]
        learners["course_ids"] = sorted({int(e["courseid"]) for e in entries if e.get("graded", True)})
        write_json(run_dir / LEARNERS, learners)
    courses = learners["course_ids"]
    return [list(batch) for batch in chunks(courses, courses_per_grade_read(integration.results, len(courses)))]


def read_course_grades(hook: MoodleHook, run_dir: RunPath, course_ids: list[int]) -> dict:
    """Course totals of the linked users, one call per course for all its users.

    A course Moodle refuses to report on (deleted meanwhile, no gradebook access) is a warning;
    the other courses of the batch are still read. Each course's answer is kept as it comes,
    so a retry of the task asks only for the courses still missing (``read_progress``).
    """
    learners = read_json(run_dir / LINKED_USERS)
    linked = set(learners["user_ids"])
    totals, outcomes = [], []
    with ReadProgress(run_dir, f"grades-courses-{course_ids[0]}", learners.get("started")) as progress:
        for course_id in course_ids:
            answer = progress.answer(f"course {course_id}", partial(_course_totals, hook, course_id, linked))
            if answer is MISSING:
                continue
            if "refused" in answer:
                outcomes.append(Outcome(f"Moodle course #{course_id}", "warning",
                                        f"grades could not be read: {answer['refused']}", OWNER_MOODLE_ADMIN,
                                        flow="results").to_dict())
            totals += answer.get("totals", [])
        progress.raise_if_incomplete()
        folder = owned_folder(run_dir / "grades")
        write_json(folder / f"courses-{course_ids[0]}.json", {"grades": totals, "outcomes": outcomes})
        progress.discard()
    return {"courses": len(course_ids), "grades": len(totals), "warnings": len(outcomes)}


def _course_totals(hook: MoodleHook, course_id: int, linked: set[int]) -> dict:
    """One course's totals of the linked users, or Moodle's refusal."""
    try:
        usergrades = hook.call("gradereport_user_get_grade_items", courseid=course_id)["usergrades"]
    except MoodleRequestError as error:
        return {"refused": error.moodle_message}
    return {"totals": [
        {"courseid": course_id, "userid": int(user["userid"]), "graderaw": item.get("graderaw"),
         "grademin": item.get("grademin"), "grademax": item.get("grademax"),
         "gradedategraded": item.get("gradedategraded")}
        for user in usergrades if int(user["userid"]) in linked
        for item in user["gradeitems"] if item.get("itemtype") == "course"]}


def _batches(run_dir: RunPath, folder: str, key: str) -> tuple[list[dict], list[dict]]:
    """Every mapped batch's rows, and its warnings once per record."""
    rows, outcomes = [], {}
    for path in sorted_files(run_dir / folder, "*.json"):
        batch = read_json(path)
        rows += batch[key]
        outcomes.update({outcome["record"]: outcome for outcome in batch["outcomes"]})
    return rows, list(outcomes.values())


def _completion_time(hook: MoodleHook, course_id: int, user_id: int) -> dict:
    """When the user completed the course, or Moodle's refusal to say."""
    try:
        status = hook.call("core_completion_get_course_completion_status", courseid=course_id, userid=user_id)
    except MoodleRequestError as error:
        return {"refused": error.errorcode, "message": error.moodle_message}
    times = [int(c["timecompleted"]) for c in status["completionstatus"].get("completions", [])
             if c.get("timecompleted")]
    return {"time": max(times) if times else None}


_ENROLMENT_FIELDS = ("id", "idnumber", "shortname", "completed", "enablecompletion", "completionhascriteria")


def _enrolled_courses(hook: MoodleHook, user_id: int) -> list[dict]:
    return [{field: course.get(field) for field in _ENROLMENT_FIELDS}
            for course in hook.call("core_enrol_get_users_courses", userid=user_id)]


def completion_read_batches(integration: Integration, run_dir: RunPath) -> list[list[int]]:
    """Users whose completions must be read (active or graded since the watermark), in batches.

    From a report, completions are read before grades, for the active learners only."""
    learners = read_json(run_dir / LEARNERS)
    graded = {int(g["userid"]) for g in _batches(run_dir, "grades", "grades")[0]
              if int(g.get("gradedategraded") or 0) > learners["watermark"]}
    users = sorted(set(learners["active"]) | graded)
    return [list(batch) for batch in chunks(users, users_per_completion_read(integration.results, len(users)))]


def read_completions(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                     user_ids: list[int]) -> dict:
    """Completion flags of these users' courses, and the completion time of completions PSIber lacks.

    A completion the enrolment-results report listed takes the report's time, so that both
    batches say the same of it. Each answer is kept as it comes, so a retry of the task asks only
    for what is still missing (``read_progress``).
    """
    learners = read_json(run_dir / LEARNERS)
    links = {int(user_id): value for user_id, value in learners["links"].items()}
    already = select_moodle_completions(engine, integration.key, sorted({links[user_id][0] for user_id in user_ids}))
    batch = set(user_ids)
    reported = {(int(entry["courseid"]), int(entry["userid"])): entry["timecompleted"]
                for entry in _reported_completions(run_dir) if entry["completed"] and int(entry["userid"]) in batch}
    completions, outcomes = [], []
    with ReadProgress(run_dir, f"completions-users-{user_ids[0]}", learners.get("started")) as progress:
        for user_id in user_ids:
            courses = progress.answer(f"courses {user_id}", partial(_enrolled_courses, hook, user_id))
            for course in [] if courses is MISSING else courses:
                code = course.get("idnumber") or course.get("shortname")
                if course.get("enablecompletion") and course.get("completionhascriteria") is False:
                    outcomes.append(Outcome(code, "warning", f"{NO_COMPLETION_CRITERIA}: completion tracking is on "
                                            "but has no criteria, so nobody can complete it", OWNER_MOODLE_ADMIN,
                                            flow="results").to_dict())
                course_id = int(course["id"])
                entry = {"courseid": course_id, "userid": user_id, "completed": bool(course.get("completed")),
                         "timecompleted": None}
                if entry["completed"] and (course_id, user_id) in reported:
                    entry["timecompleted"] = reported[(course_id, user_id)]  # None when PSIber holds it
                elif entry["completed"] and (links[user_id][0], course_id) not in already:
                    known = progress.answer(f"time {user_id} {course_id}",
                                            partial(_completion_time, hook, course_id, user_id))
                    if known is MISSING:
                        continue
                    entry["timecompleted"] = known.get("time")
                    if known.get("refused") == _NO_CRITERIA_ERROR:  # the grading time or date of sync stands in
                        outcomes.append(Outcome(code, "warning", f"{NO_COMPLETION_CRITERIA}: {known['message']}",
                                                OWNER_MOODLE_ADMIN, flow="results").to_dict())
                    elif "refused" in known:
                        outcomes.append(Outcome(f"{links[user_id][1]} / {code}", "warning",
                                                f"completion time could not be read ({known['message']}); "
                                                "dated by its grading time, else the date of sync",
                                                OWNER_MOODLE_ADMIN,
                                                flow="results").to_dict())
                completions.append(entry)
        progress.raise_if_incomplete()
        folder = owned_folder(run_dir / "completions")
        write_json(folder / f"users-{user_ids[0]}.json", {"completions": completions, "outcomes": outcomes})
        progress.discard()
    return {"users": len(user_ids), "completions": len(completions)}


def _reported_completions(run_dir: RunPath) -> list[dict]:
    path = run_dir / REPORTED_COMPLETIONS
    return read_json(path)["completions"] if path.exists() else []


def _rejected_pairs(rows: list[dict], columns, validate, label: Callable[[int, int], str | None], now: int):
    """GX's verdict on the rows, and the (course, user) pairs it rejects."""
    frame = pd.DataFrame([{**row, "record": label(int(row["courseid"]), int(row["userid"]))} for row in rows],
                         columns=list(columns))
    checked = validate(frame, now)
    return checked, {(int(r.courseid), int(r.userid)) for r in checked.rejected.itertuples()}


def _planned_grades(grades: list[dict], completions: list[dict], learners: dict) -> list[dict]:
    """The course totals of the pairs this run plans: those whose completion was read, and those graded since the
    watermark (per user and course; from a report, a regrade alone waits for the next full read). Only these are
    validated: a course's other learners did not change."""
    read = {(int(row["courseid"]), int(row["userid"])) for row in completions}
    since = None if learners.get("from_report") else learners["watermark"]
    return [total for total in grades if (int(total["courseid"]), int(total["userid"])) in read
            or (since is not None and int(total.get("gradedategraded") or 0) > since)]


@dataclass
class _Checks:
    """What validating the read batches said."""

    grade_warnings: list[dict]
    completion_warnings: list[dict]
    grades_invalid: list[Outcome] = field(default_factory=list)
    completions_invalid: list[Outcome] = field(default_factory=list)
    grades_read: int = 0  # the guard weighs the bad grades against all Moodle answered
    completions_checked: int = 0

    @property
    def invalid(self) -> list[Outcome]:
        return self.grades_invalid + self.completions_invalid

    def guard(self, limit: float) -> None:
        """Stop the run when too many of the rows read are bad (after the plan listing them is written)."""
        check_invalid_share(len(self.grades_invalid), self.grades_read, limit, "course grades", OWNER_MOODLE_ADMIN)
        check_invalid_share(len(self.completions_invalid), self.completions_checked, limit, "course completions",
                            OWNER_MOODLE_ADMIN)


def _checked_reads(grades: list[dict], completions: list[dict], learners: dict,
                   label: Callable[[int, int], str | None], checks: _Checks) -> tuple[list[dict], list[dict]]:
    """One group's grades and completions a plan is made of, validated (the rejected ones left out and added to
    ``checks``); GX's frames are let go when this returns."""
    now = learners["started"]
    completions = list({(int(row["courseid"]), int(row["userid"])): row for row in completions}.values())
    checks.grades_read += len(grades)
    grades = [without_empty_range(total) for total in _planned_grades(grades, completions, learners)]
    grade_check, bad_grade_pairs = _rejected_pairs(grades, GRADE_COLUMNS, validate_course_grades, label, now)
    completion_check, bad_completion_pairs = _rejected_pairs(completions, COMPLETION_COLUMNS, validate_completions,
                                                             label, now)
    checks.grades_invalid += invalid_outcomes(((p.record, p.reasons, p.owner) for p in grade_check.invalid),
                                              flow="results")
    checks.completions_invalid += invalid_outcomes(((p.record, p.reasons, p.owner) for p in completion_check.invalid),
                                                   flow="results")
    checks.completions_checked += completion_check.checked
    excluded = bad_grade_pairs | bad_completion_pairs

    def kept(rows: list[dict]) -> list[dict]:
        return [row for row in rows if (int(row["courseid"]), int(row["userid"])) not in excluded]

    return kept(grades), kept(completions)


@dataclass
class _ReadFiles:
    """The read batches' files, how many rows each course has in them, and their warnings once per record."""

    grade_files: list[RunPath]
    completion_files: list[RunPath]
    grade_files_of: dict[int, set[int]]  # course id → positions in grade_files
    rows_of: Counter[int]  # course id → its grade and completion rows
    checks: _Checks


def _read_files(run_dir: RunPath) -> _ReadFiles:
    """Every batch file read once, one at a time, for what the groups of courses need to know of it."""
    grade_files, completion_files = sorted_files(run_dir / "grades", "*.json"), sorted_files(
        run_dir / "completions", "*.json")
    grade_files_of: dict[int, set[int]] = {}
    rows_of: Counter[int] = Counter()
    warnings: tuple[dict[str, dict], dict[str, dict]] = ({}, {})
    for files, key, seen in ((grade_files, "grades", warnings[0]), (completion_files, "completions", warnings[1])):
        for position, path in enumerate(files):
            batch = read_json(path)
            for row in batch[key]:
                rows_of[int(row["courseid"])] += 1
                if key == "grades":
                    grade_files_of.setdefault(int(row["courseid"]), set()).add(position)
            seen.update({outcome["record"]: outcome for outcome in batch["outcomes"]})
    return _ReadFiles(grade_files, completion_files, grade_files_of, rows_of,
                      _Checks(list(warnings[0].values()), list(warnings[1].values())))


def course_groups(rows_of: Mapping[int, int], budget: int) -> list[list[int]]:
    """Course ids in ascending order, cut into groups of at most ``budget`` rows (a larger course alone)."""
    groups: list[list[int]] = []
    held = budget
    for course_id in sorted(rows_of):
        if held + rows_of[course_id] > budget:
            groups.append([])
            held = 0
        groups[-1].append(course_id)
        held += rows_of[course_id]
    return groups


def _group_rows(files: _ReadFiles, course_ids: list[int]) -> tuple[list[dict], list[dict]]:
    """The grade and completion rows of these courses, in the order the batch files hold them."""
    wanted = set(course_ids)
    positions = sorted({p for course_id in course_ids for p in files.grade_files_of.get(course_id, ())})
    grades = [row for p in positions for row in read_json(files.grade_files[p])["grades"]
              if int(row["courseid"]) in wanted]
    completions = [row for path in files.completion_files for row in read_json(path)["completions"]
                   if int(row["courseid"]) in wanted]
    return grades, completions


def plan_result_changes(integration: Integration, engine: Engine, run_dir: RunPath) -> dict:
    """Validate the results read, then decide attempts and completions (pure planning).

    One group of courses at a time (``ROWS_PER_GROUP`` rows read), each planned into a part of the plan, so the
    step's memory does not grow with the number of learners. Every rule looks at one row and the plan at one
    (course, user) pair, so the groups make the plan one whole read would; the invalid-share guard weighs the
    whole read's totals.
    """
    learners = read_json(run_dir / LEARNERS)
    results = select_picklists(engine).get("result", set())
    missing = [value for value in (integration.pass_result, integration.fail_result) if value not in results]
    if missing:
        raise ResultPicklistError(
            f"pass_result/fail_result {missing} are not values of PSIber's result picklist "
            f"({', '.join(sorted(results)) or 'empty'}); fix the integration file or the picklist "
            f"(owner: {OWNER_TRAINING_ADMIN} / PSIber setup)")
    moodle_ends = {int(c["id"]): int(c.get("enddate") or 0) for c in read_json(run_dir / MOODLE_COURSES)}
    courses = {int(row["moodle_course_id"]): {**row, "enddate": moodle_ends.get(int(row["moodle_course_id"]), 0)}
               for row in select_courses(engine)
               if row["source"] == "moodle" and row["integration_name"] == integration.key}
    links = {int(k): (v[0], v[1]) for k, v in learners["links"].items()}

    def label(course_id: int, user_id: int) -> str | None:  # for the rows read only, not every course × user
        course, link = courses.get(course_id), links.get(user_id)
        return f"{link[1]} / {course['course_code']}" if course and link else None

    files = _read_files(run_dir)
    checks = files.checks
    now = learners["started"]
    folder = owned_folder(run_dir / PLAN_PARTS)
    parts: list[str] = []
    skipped: list[dict] = []
    planned = in_progress = 0
    for course_ids in course_groups(files.rows_of, ROWS_PER_GROUP):
        grades, completions = _checked_reads(*_group_rows(files, course_ids), learners, label, checks)
        plan = plan_results(
            integration_key=integration.key, links=links, courses=courses, grades=grades, completions=completions,
            changed_since=learners["watermark"], pass_result=integration.pass_result,
            fail_result=integration.fail_result, sync_date=datetime.fromtimestamp(now, integration.zone).date(),
            now=now, zone=integration.zone,
        )
        del grades, completions  # the part is written next: its reads need no memory meanwhile
        if plan.attempts:
            parts.append(f"part-{len(parts) + 1:05d}.json")
            write_json(folder / parts[-1], {"attempts": plan.attempts, "completions": plan.completions})
        planned += len(plan.attempts)
        in_progress += plan.in_progress
        skipped += [o.to_dict() for o in plan.outcomes]
    write_json(run_dir / PLAN, {
        "reads_complete": not (checks.grade_warnings or checks.invalid), "parts": parts, "in_progress": in_progress,
        "outcomes": checks.grade_warnings + checks.completion_warnings + [o.to_dict() for o in checks.invalid]
        + skipped,
    })
    checks.guard(integration.safety.max_invalid_share)
    return {"attempts": planned, "in_progress": in_progress, "invalid": len(checks.invalid)}


def plan_parts(run_dir: RunPath) -> Iterator[dict]:
    """The plan's parts ({attempts, completions}), one at a time."""
    for name in read_json(run_dir / PLAN)["parts"]:
        yield read_json(run_dir / PLAN_PARTS / name)


def planned_attempts(run_dir: RunPath) -> Iterator[dict]:
    """Every attempt the plan holds, part by part."""
    for part in plan_parts(run_dir):
        yield from part["attempts"]


def load_results(integration: Integration, engine: Engine, run_dir: RunPath) -> dict:
    """Write attempts and completions, then move the watermark to (just before) this run's start.

    When part of Moodle's answers could not be used (a course's grades unreadable, rejected
    rows), the watermark stays where it was, so the next run asks about them again. The plan's parts
    are written one after the other in one transaction: all of them or none.
    """
    plan = read_json(run_dir / PLAN)
    learners = read_json(run_dir / LEARNERS)
    complete = plan["reads_complete"]
    until = learners["started"] - WATERMARK_OVERLAP_SECONDS if complete else learners["stored_watermark"]
    new, changed = save_result_parts(engine, integration.key,
                                     ((part["attempts"], part["completions"]) for part in plan_parts(run_dir)), until,
                                     full_sync_at=learners["started"] if learners["full"] and complete else None)
    new_keys = set(new)
    planned, outcomes = 0, []
    for attempt in planned_attempts(run_dir):
        planned += 1
        if attempt["attempt_key"] in new_keys:
            outcomes.append(Outcome(
                attempt["record"], "recorded",
                f"{attempt['result']}, grade {attempt['grade'] if attempt['grade'] is not None else 'none'}, "
                f"on {attempt['attempt_date']}", flow="results").to_dict())
    counts = {"new_attempts": len(new), "already_recorded": planned - len(new),
              "completions_changed": changed, "in_progress": plan["in_progress"]}
    write_outcomes(run_dir / LOADED, outcomes, {"results": counts})
    log.info("Results: %s", counts)
    return counts

"""The steps of the ESS flow (SPEC F8), one function per DAG task, after the users and courses flows.

Offers come from the courses flow's read of Moodle (no call of their own); assessments from
``mod_assign_get_assignments`` and ``mod_quiz_get_quizzes_by_courses``, many courses per call, and
enrolled students only for the courses with something to announce; requests from PSIber, enrolled
through ``enrol_manual_enrol_users``. So a night with nothing new costs two calls per
``ess.courses_per_call`` visible courses, whatever the number of employees. Each step reads its
inputs from the run directory and PSIber and writes its result there: any task can be re-run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from functools import partial

from sqlalchemy import Engine

from moodle_provider.exceptions import MoodleRequestError
from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import Integration
from psiber.course_plan import _plain, course_code, real_courses
from psiber.course_sync import MOODLE_CATEGORIES, MOODLE_COURSES
from psiber.ess_assessments import (
    Assessment,
    AssessmentChanges,
    assessment_notifications,
    assessments_from_answers,
    plan_assessment_changes,
)
from psiber.ess_db import (
    refresh_offers,
    save_assessments,
    save_decisions,
    select_assessments,
    select_pending_requests,
)
from psiber.ess_enrolments import (
    ALREADY_ENROLLED,
    ENROLLED,
    ENROLLED_AS_STUDENT,
    MOODLE_REFUSALS,
    REFUSED,
    SUSPENDED_ENROLMENT,
    Decision,
    Request,
    RequestPlan,
    decision_notification,
    decision_outcome,
    moodle_refusal,
    plan_requests,
)
from psiber.ess_offers import FLOW, WantedOffers, wanted_offers
from psiber.psiber_db import delete_user_links, select_user_links
from psiber.user_sync import EMPLOYEES
from sync_common.frames import frame_records
from sync_common.moodle_batches import chunks, input_var_batches, send_isolating
from sync_common.moodle_rules import DELETED_ACCOUNT_ERROR, deleted_account_reason
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.read_progress import MISSING, ReadProgress
from sync_common.refusals import RefusalStreak, SiteRefusesWritesError, refused_alike
from sync_common.run_files import RunPath, read_frame, read_json, write_json
from sync_common.step_outputs import read_outcomes, step_file, write_outcomes
from sync_common.write_lock import integration_write_lock

log = logging.getLogger(__name__)

STUDENT = "student"
# What the ESS steps leave behind (their outcomes; the offers and decisions the next steps read).
OFFERS, NOTIFIED, ENROLMENTS = (step_file(f"ess.{step}") for step in ("offer", "notify", "enrol"))
# The users flow's outcomes that say why an employee has no Moodle account.
USERS_PROBLEMS = ("invalid", "conflict", "failed", "quarantined", "skipped")


# The extract's columns ESS reads: who an employee is, and what the offer rules and the scope match on.
_EMPLOYEE_COLUMNS = ("employee_id", "employee_number", "known_payroll_code", "employment_status", "payroll_code",
                     "employment_type")


def _employees(run_dir: RunPath) -> list[dict]:
    return frame_records(read_frame(run_dir / EMPLOYEES, _EMPLOYEE_COLUMNS))


def _course_names(run_dir: RunPath) -> dict[int, tuple[str, str]]:
    """(code, plain full name) of every Moodle course the courses flow read, by Moodle id."""
    return {int(c["id"]): (course_code(c), _plain(c.get("fullname")))
            for c in real_courses(read_json(run_dir / MOODLE_COURSES))}


def _course(courses: dict[int, tuple[str, str]], course_id: int) -> tuple[str, str]:
    """(code, name) of a course, or a label for one Moodle no longer has."""
    return courses.get(course_id, (f"Moodle course #{course_id}",) * 2)


def refresh_ess_offers(integration: Integration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    """Each active employee's offered courses, from the offer rules and this run's read of Moodle's
    courses; a course offered for the first time is announced to the employee."""
    employees = _employees(run_dir)
    wanted, warnings = wanted_offers(integration, employees, read_json(run_dir / MOODLE_COURSES),
                                     read_json(run_dir / MOODLE_CATEGORIES))
    numbers = {int(e["employee_id"]): e["employee_number"] for e in employees}
    with integration_write_lock(engine, integration.key, holder):
        outcomes = refresh_offers(engine, integration.key, wanted, numbers)
    write_outcomes(run_dir / OFFERS, warnings + outcomes, **wanted.run_file())
    counts = Counter(outcome.action for outcome in outcomes)
    log.info("ESS offers: %d employees, %d offers; %s", len(wanted.employee_groups), wanted.count, dict(counts))
    return {"employees": len(wanted.employee_groups), "offers": wanted.count, **counts, "warnings": len(warnings)}


def _students(hook: MoodleHook, course_id: int, employees_by_user: dict[int, int]) -> list[int]:
    """Employees with an active student enrolment in the course (their accounts linked by this integration)."""
    users = hook.call("core_enrol_get_enrolled_users", courseid=course_id,
                      options=[{"name": "onlyactive", "value": "1"}, {"name": "userfields", "value": "id,roles"}])
    return sorted(employees_by_user[int(user["id"])] for user in users if int(user["id"]) in employees_by_user
                  and any(role.get("shortname") == STUDENT for role in user.get("roles") or []))


def read_ess_assessments(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath) -> dict:
    """The assignments and quizzes of Moodle's visible courses, what is new or re-dated since PSIber last
    saw them, and the students of the courses with something to announce.

    ``includenotenrolledcourses`` is needed: without it Moodle drops every course the web-service
    user is not enrolled in. Each answer is kept as it comes (``read_progress``), so a retry asks
    only for the rest.
    """
    course_ids = [int(c["id"]) for c in real_courses(read_json(run_dir / MOODLE_COURSES))
                  if int(c.get("visible") or 0) == 1]
    batches = [list(batch) for batch in chunks(course_ids, integration.ess.courses_per_call)]
    stamp = hashlib.sha256(json.dumps(course_ids).encode()).hexdigest()
    links = select_user_links(engine, integration.key)
    employees_by_user = {int(row.moodle_user_id): int(row.employee_id) for row in links.itertuples()}
    with ReadProgress(run_dir, "ess-assessments", stamp) as progress:
        assignments = [progress.answer(f"assign {batch[0]}", partial(
            hook.call, "mod_assign_get_assignments", courseids=batch, includenotenrolledcourses=1))
            for batch in batches]
        quizzes = [progress.answer(f"quiz {batch[0]}", partial(
            hook.call, "mod_quiz_get_quizzes_by_courses", courseids=batch)) for batch in batches]
        progress.raise_if_incomplete()
        current = assessments_from_answers(assignments, quizzes)
        changes = plan_assessment_changes(current, select_assessments(engine, integration.key), int(time.time()))
        students = {course: progress.answer(f"students {course}", partial(_students, hook, course, employees_by_user))
                    for course in changes.courses_to_announce}
        progress.raise_if_incomplete()
        write_json(run_dir / "ess_assessments.json", {
            "new": [a.to_dict() for a in changes.new], "changed": [a.to_dict() for a in changes.changed],
            "to_store": [a.to_dict() for a in changes.to_store], "students": {str(k): v for k, v in students.items()}})
        progress.discard()
    warnings = sum(len(answer.get("warnings", [])) for answer in assignments + quizzes if answer is not MISSING)
    log.info("ESS assessments: %d in %d visible courses; %d new, %d re-dated; %d Moodle warnings (hidden "
             "activities, courses gone)", len(current), len(course_ids), len(changes.new), len(changes.changed),
             warnings)
    return {"assessments": len(current), "new": len(changes.new), "changed": len(changes.changed),
            "courses_read_for_students": len(students)}


def notify_ess_assessments(integration: Integration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    """Tell each student of a course about its new assessments and changed due dates; remember them."""
    read = read_json(run_dir / "ess_assessments.json")
    changes = AssessmentChanges(*([Assessment(**a) for a in read[key]] for key in ("new", "changed", "to_store")))
    students = {int(course): employees for course, employees in read["students"].items()}
    courses = _course_names(run_dir)
    notifications = assessment_notifications(changes, students, courses, integration.zone)
    with integration_write_lock(engine, integration.key, holder):
        save_assessments(engine, integration.key, changes.to_store, notifications)
    texts: dict[int, list[str]] = {}
    for n in notifications:
        texts.setdefault(n.employee_id, []).append(f"{n.course_code}: {n.text}")
    numbers = {int(e["employee_id"]): e["employee_number"] for e in _employees(run_dir)} if texts else {}
    write_outcomes(run_dir / NOTIFIED, [  # one line per employee, however many notifications
        Outcome(numbers.get(employee_id) or f"PSIber employee row {employee_id}", "notified", " ".join(told),
                flow=FLOW) for employee_id, told in sorted(texts.items())])
    return {"notifications": len(notifications), "employees_notified": len(texts),
            "assessments_stored": len(changes.to_store)}


def _no_account_reasons(run_dir: RunPath, employees: list[dict]) -> dict[int, str]:
    """Why the users flow of this run made no Moodle account, by employee id, where it said."""
    ids = {e["employee_number"]: int(e["employee_id"]) for e in employees if e.get("employee_number")}
    reasons: dict[int, str] = {}
    for outcome in read_outcomes(run_dir)[0]:
        if outcome["flow"] == "users" and outcome["action"] in USERS_PROBLEMS and outcome["record"] in ids:
            reasons[ids[outcome["record"]]] = f"{outcome['action']}: {outcome['reason']}"
    return reasons


def _enrolled_users(hook: MoodleHook, course_id: int, which: str) -> set[int]:
    """Users with an active (``onlyactive``) or a suspended or ended (``onlysuspended``) enrolment."""
    users = hook.call("core_enrol_get_enrolled_users", courseid=course_id,
                      options=[{"name": which, "value": "1"}, {"name": "userfields", "value": "id"}])
    return {int(user["id"]) for user in users}


def _refused_by_site(error: MoodleRequestError) -> SiteRefusesWritesError:
    """No request would pass (a capability, the role), so none is refused for it: they stay pending."""
    return SiteRefusesWritesError(
        f"Moodle refused to enrol ({error}); if it names the role, check 'ess.student_role_id' and that the "
        "web-service user's role may assign it and holds enrol/manual:enrol. The requests stay pending "
        f"(owner: {OWNER_MOODLE_ADMIN})")


def enrol_ess_requests(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath,
                       holder: str) -> dict:
    """Decide every pending request (only approved ones when the integration requires approval): refuse
    what cannot be, find those already enrolled (and those whose enrolment a teacher suspended: Moodle's
    enrolment would silently re-activate it), enrol the rest as students in batches within the site's
    max_input_vars. Every decision is kept in the run directory, also when the step stops."""
    with integration_write_lock(engine, integration.key, holder):
        return _enrol(integration, hook, engine, run_dir)


def _plan(integration: Integration, engine: Engine, run_dir: RunPath, requests: list[Request]) -> RequestPlan:
    """The requests' plan, from this run's offers, links and the users flow's outcomes: read only when some request
    is pending, so a night without one reads none of the population."""
    if not requests:
        return RequestPlan()
    offers = WantedOffers.by_employee(read_json(run_dir / OFFERS))
    links = select_user_links(engine, integration.key)
    return plan_requests(requests, offers, {int(r.employee_id): int(r.moodle_user_id) for r in links.itertuples()},
                         integration.ess.approval_required, _no_account_reasons(run_dir, _employees(run_dir)))


def _enrol(integration: Integration, hook: MoodleHook, engine: Engine, run_dir: RunPath) -> dict:
    requests = select_pending_requests(engine, integration.key)
    plan = _plan(integration, engine, run_dir, requests)
    decisions = list(plan.decisions)
    pairs: dict[tuple[int, int], list[Request]] = {}
    for request, user_id in plan.to_enrol:
        pairs.setdefault((user_id, request.moodle_course_id), []).append(request)

    def decide(pair: tuple[int, int], state: str, reason: str, owner: str = "") -> None:
        decisions.extend(Decision.of(request, state, reason, owner) for request in pairs[pair])

    def send(batch: list[dict]) -> None:
        hook.call("enrol_manual_enrol_users", enrolments=batch)

    def refuse(item: dict, error: MoodleRequestError) -> None:
        if error.errorcode == DELETED_ACCOUNT_ERROR:
            deleted_accounts.append((item["userid"], item["courseid"]))
        else:
            decide((item["userid"], item["courseid"]), REFUSED, *moodle_refusal(error.errorcode,
                                                                                 error.moodle_message))

    deleted_accounts: list[tuple[int, int]] = []

    users_by_course: dict[int, list[int]] = {}
    for user_id, course_id in sorted(pairs):
        users_by_course.setdefault(course_id, []).append(user_id)
    streak = RefusalStreak("enrol employees", lambda count, code, message: SiteRefusesWritesError(
        f"{refused_alike(count, code, message, 'enrol employees')}; the requests stay pending"))
    try:
        to_send = []
        for course_id, user_ids in users_by_course.items():
            enrolled = _enrolled_users(hook, course_id, "onlyactive")
            held = _enrolled_users(hook, course_id, "onlysuspended")  # enrolling again would re-activate it
            for user_id in user_ids:
                if user_id in enrolled:
                    decide((user_id, course_id), ENROLLED, ALREADY_ENROLLED)
                elif user_id in held:
                    decide((user_id, course_id), REFUSED, SUSPENDED_ENROLMENT, OWNER_MOODLE_ADMIN)
                else:
                    to_send.append({"roleid": integration.ess.student_role_id, "userid": user_id,
                                    "courseid": course_id})
        with streak:
            for batch in input_var_batches(to_send, integration.ess.batch_size, integration.moodle_max_input_vars,
                                           lambda item: item):
                try:  # enrol_manual_enrol_users is all-or-nothing per call: a refused enrolment is isolated
                    done = send_isolating(batch, send, refuse, MOODLE_REFUSALS, streak=streak)
                except MoodleRequestError as error:  # not a refusal of one enrolment: none would pass
                    raise _refused_by_site(error) from error
                for item in done:
                    decide((item["userid"], item["courseid"]), ENROLLED, ENROLLED_AS_STUDENT)
    finally:  # what Moodle did is written back even when the step stops half-way
        courses = _course_names(run_dir)
        outcomes = [decision_outcome(d, _course(courses, d.moodle_course_id)[0]) for d in decisions]
        outcomes += [Outcome(r.record, "awaiting_approval", f"{_course(courses, r.moodle_course_id)[0]}: not "
                             "approved in PSIber yet (the integration enrols approved requests only)", flow=FLOW)
                     for r in plan.waiting]
        outcomes += _for_deleted_accounts(engine, integration, deleted_accounts, pairs, courses)
        write_outcomes(run_dir / ENROLMENTS, outcomes, {FLOW: {"requested": len(requests)}},
                       decisions=[d.to_dict() for d in decisions])
    counts = Counter(d.state for d in decisions)
    log.info("ESS requests: %d pending, %d enrolled, %d refused, %d awaiting approval; %d Moodle calls",
             len(requests), counts[ENROLLED], counts[REFUSED], len(plan.waiting), hook.calls_made)
    return {"requested": len(requests), "enrolled": counts[ENROLLED], "refused": counts[REFUSED],
            "awaiting_approval": len(plan.waiting)}


def _for_deleted_accounts(engine: Engine, integration: Integration, deleted: list[tuple[int, int]],
                          pairs: dict[tuple[int, int], list[Request]], courses: dict[int, tuple[str, str]]
                          ) -> list[Outcome]:
    """Moodle answered ``userdeleted``: an administrator deleted the linked account. Its requests stay pending
    (neither the employee nor HR is to blame) and its link is dropped, so the users flow gives the employee a new
    account that the next run enrols."""
    requests = [(user_id, request) for user_id, course_id in deleted for request in pairs[(user_id, course_id)]]
    delete_user_links(engine, integration.key, sorted({request.employee_id for _, request in requests}))
    return [Outcome(request.record, "warning", f"{_course(courses, request.moodle_course_id)[0]}: "
                    + deleted_account_reason(user_id, "the request stays pending and is enrolled once the users flow "
                                                      "has given the employee a new account"), OWNER_MOODLE_ADMIN, FLOW)
            for user_id, request in requests]


def record_ess_requests(integration: Integration, engine: Engine, run_dir: RunPath, holder: str) -> dict:
    """Write back each decided request's outcome and tell the employee, also after an enrol step that
    stopped half-way (what Moodle did is recorded)."""
    if not (run_dir / ENROLMENTS).exists():
        return {"decided": 0}
    decisions = [Decision(**d) for d in read_json(run_dir / ENROLMENTS)["decisions"]]
    courses = _course_names(run_dir)
    notifications = [decision_notification(d, *_course(courses, d.moodle_course_id)) for d in decisions]
    with integration_write_lock(engine, integration.key, holder):
        decided = save_decisions(engine, integration.key, decisions, notifications)
    return {"decided": decided}

"""Which ESS enrolment requests to send to Moodle, and the readable outcome of each (SPEC F8).

Pure functions: a pending request (approved first, when the integration requires it) is refused
when its employee is not active in the integration's scope, when the course is not offered to them
(any more), or when the employee still has no Moodle account after this run's users flow; the others
are enrolled through Moodle's manual enrolment. A request is decided once, with the reason written
back to PSIber and told to the employee.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from psiber.config import OWNER_PSIBER_HR
from psiber.ess_notifications import Notification, enrolment_outcome
from psiber.ess_offers import FLOW
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome

ENROLLED, REFUSED = "enrolled", "refused"
NOT_ACTIVE = "you are not an active employee on a payroll this integration covers"
NOT_OFFERED = "the course is not offered to you (any more): hidden or removed in Moodle, or outside your ESS offers"
ALREADY_ENROLLED = "already enrolled in Moodle"
SUSPENDED_ENROLMENT = ("your enrolment in this course is suspended or has ended in Moodle: ask the course's teacher "
                       "or a Moodle administrator to reactivate it")
ENROLLED_AS_STUDENT = "enrolled in Moodle as student"
# Moodle's refusals of one enrolment (enrol_manual_enrol_users fails the whole call for it), as readable reasons.
MOODLE_REFUSALS = {
    "wsnoinstance": ("the course has no manual enrolment method in Moodle (or it is disabled)", OWNER_MOODLE_ADMIN),
    "invaliduser": ("your Moodle account no longer exists", OWNER_MOODLE_ADMIN),
    "userdeleted": ("your Moodle account was deleted", OWNER_MOODLE_ADMIN),
    "invalidparameter": ("Moodle does not know the course (deleted since it was offered?)", OWNER_MOODLE_ADMIN),
}


@dataclass(frozen=True)
class Request:
    employee_id: int
    employee_number: str | None
    moodle_course_id: int
    requested_at: str
    approved: bool

    @property
    def record(self) -> str:
        return self.employee_number or f"PSIber employee row {self.employee_id}"


@dataclass(frozen=True)
class Decision:
    """A request's outcome: ``state`` enrolled or refused, with the reason written back."""

    employee_id: int
    employee_number: str | None
    moodle_course_id: int
    requested_at: str
    state: str
    reason: str
    owner: str = ""

    @classmethod
    def of(cls, request: Request, state: str, reason: str, owner: str = "") -> Decision:
        return cls(request.employee_id, request.employee_number, request.moodle_course_id, request.requested_at,
                   state, reason, owner)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RequestPlan:
    """``to_enrol``: (request, Moodle user id) pairs for Moodle; ``waiting``: not approved yet."""

    decisions: list[Decision] = field(default_factory=list)
    to_enrol: list[tuple[Request, int]] = field(default_factory=list)
    waiting: list[Request] = field(default_factory=list)


def plan_requests(requests: list[Request], offers: dict[int, frozenset[int]], moodle_users: dict[int, int],
                  approval_required: bool, no_account_reasons: dict[int, str]) -> RequestPlan:
    """``offers``: this run's offered Moodle course ids by employee id (every active employee in scope has
    an entry, empty or not);
    ``moodle_users``: Moodle user id by employee id, after this run's users flow;
    ``no_account_reasons``: why the users flow made no account, by employee id, where it said."""
    plan = RequestPlan()
    for request in requests:
        if approval_required and not request.approved:
            plan.waiting.append(request)
        elif request.employee_id not in offers:
            plan.decisions.append(Decision.of(request, REFUSED, NOT_ACTIVE, OWNER_PSIBER_HR))
        elif request.moodle_course_id not in offers[request.employee_id]:
            plan.decisions.append(Decision.of(request, REFUSED, NOT_OFFERED, OWNER_PSIBER_HR))
        elif request.employee_id not in moodle_users:
            why = no_account_reasons.get(request.employee_id)
            plan.decisions.append(Decision.of(
                request, REFUSED, "you have no Moodle account yet" + (f" ({why})" if why else "")
                + "; ask again once HR has fixed your record", OWNER_PSIBER_HR))
        else:
            plan.to_enrol.append((request, moodle_users[request.employee_id]))
    return plan


def moodle_refusal(errorcode: str | None, message: str) -> tuple[str, str]:
    """Reason and owner of Moodle's refusal of one enrolment."""
    return MOODLE_REFUSALS.get(errorcode or "", (f"Moodle refused the enrolment ({message})", OWNER_MOODLE_ADMIN))


def decision_outcome(decision: Decision, course_code: str) -> Outcome:
    return Outcome(decision.employee_number or f"PSIber employee row {decision.employee_id}", decision.state,
                   f"{course_code}: {decision.reason}", decision.owner, flow=FLOW)


def decision_notification(decision: Decision, course_code: str, course_name: str) -> Notification:
    return enrolment_outcome(decision.employee_id, decision.moodle_course_id, course_code, course_name,
                             decision.requested_at, decision.state == ENROLLED, decision.reason)

"""Integration settings: one YAML file per integration, checked before any DAG is built.

The file holds no secrets: the Moodle URL and token, the PSIber database and the initial
password of new users live in Airflow Connections, referenced here by id.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sync_common.settings_files import (
    ConnectionId,
    IntegrationSettings,
    Share,
    StrictSettings,
    load_settings_file,
    load_settings_folder,
)

CONFIG_OWNER = "the data engineer who maintains the integration files"
OWNER_PSIBER_HR = "PSIber HR"  # who corrects an employee's record

# PSIber employee columns that may be matched to Moodle user profile fields.
MATCHABLE_EMPLOYEE_ELEMENTS = (
    "employee_number",
    "employment_status",
    "employment_type",
    "gender",
    "disability",
    "payroll_code",
    "payroll_name",
    "uif_ref",
    "sdl_ref",
)

# PSIber course elements a Moodle course custom field may fill, and how its value is read.
COURSE_ELEMENT_KINDS = {
    "saqa_id": "text",
    "nqf_recognised": "flag",
    "min_pass_rate": "number",
    "nqf_level": "picklist",
    "course_level": "picklist",
}

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]+\.)+[a-z]{2,}$", re.IGNORECASE)
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class IntegrationConfigError(ValueError):
    """An integration file that cannot be used; the message names the file and the field."""


class PasswordPolicy(StrEnum):
    initial_password = "initial_password"
    moodle_generated = "moodle_generated"


class NewUserPasswords(StrictSettings):
    """How new Moodle users get their first password.

    ``initial_password``: the password stored in the Airflow Connection ``connection_id``
    (the seed's fixed training password), with a forced change at first login.
    ``moodle_generated``: Moodle makes a password and e-mails it to the user.
    """

    policy: PasswordPolicy = PasswordPolicy.moodle_generated
    connection_id: ConnectionId | None = None

    @model_validator(mode="after")
    def _connection_for_initial_password(self) -> NewUserPasswords:
        if self.policy is PasswordPolicy.initial_password and not self.connection_id:
            raise ValueError("policy 'initial_password' needs 'connection_id', the Airflow Connection holding it")
        return self


class ProfileFieldMatch(StrictSettings):
    """A Moodle user profile field filled from a PSIber employee element.

    ``menu_options`` lists a drop-down field's options: a value outside them is a
    record-level warning (Moodle would silently store nothing).
    """

    moodle_field: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")]
    psiber_element: Literal[MATCHABLE_EMPLOYEE_ELEMENTS]  # type: ignore[valid-type]
    menu_options: tuple[str, ...] | None = None

    @property
    def element(self) -> str:
        """The employee column the field is filled from, as the users flow reads it, whatever the source."""
        return self.psiber_element


class CourseFieldMatch(StrictSettings):
    """A Moodle course custom field copied into a PSIber course element (picklist values must exist)."""

    moodle_field: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")]
    psiber_element: Literal[tuple(COURSE_ELEMENT_KINDS)]  # type: ignore[valid-type]


class CourseSync(StrictSettings):
    custom_field_matches: tuple[CourseFieldMatch, ...] = ()


class ResultSync(StrictSettings):
    """How results are read: per-course grade reads and per-user completion reads, in batches
    that mapped tasks (and so several workers) share; everyone's results again every
    ``full_sync_every_days``, for changes no learner activity reveals.

    ``moodle_pool`` names an Airflow pool (create it first) that bounds Moodle calls across
    all runs; ``max_parallel_reads`` bounds them within one run. Left out, ``courses_per_read_task``
    and ``users_per_read_task`` follow the number to read and ``max_parallel_reads``
    (``psiber.result_read_tasks``).
    """

    courses_per_read_task: Annotated[int, Field(ge=1, le=500)] | None = None
    users_per_read_task: Annotated[int, Field(ge=1, le=5000)] | None = None
    full_sync_every_days: Annotated[int, Field(ge=1)] = 7
    max_parallel_reads: Annotated[int, Field(ge=1, le=64)] = 4
    moodle_pool: Annotated[str, Field(pattern=_CONN_ID.pattern)] | None = None


class MoodleReports(StrictSettings):
    """Report Builder custom reports an administrator made and shared with the web-service user (README: Report
    Builder reports), read in pages instead of per user: ``enrolment_results`` (every enrolment with its
    completion) and ``user_access`` (users by last access). Ids as Moodle shows them in the report's address."""

    enrolment_results: Annotated[int, Field(ge=1)] | None = None
    user_access: Annotated[int, Field(ge=1)] | None = None


class EssOffer(StrictSettings):
    """One rule of which Moodle courses ESS offers to which employees (SPEC F8).

    A visible course is offered when it is in one of ``categories`` (Moodle category names or ID
    numbers, their subcategories included) and, if ``custom_field`` is set, that checkbox course
    custom field is ticked; either may be left out, not both. It is offered to the integration's
    active employees, or only to those on ``payrolls`` (codes) / with an ``employment_types`` value.
    A course is offered to an employee when any rule offers it.
    """

    categories: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    custom_field: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")] | None = None
    payrolls: tuple[Annotated[str, Field(min_length=1)], ...] | None = None
    employment_types: tuple[Annotated[str, Field(min_length=1)], ...] | None = None

    @model_validator(mode="after")
    def _chooses_courses(self) -> EssOffer:
        if not self.categories and not self.custom_field:
            raise ValueError("an offer needs 'categories', 'custom_field' or both (which courses it offers)")
        return self


class EssSync(StrictSettings):
    """Employee Self Service: the courses offered, notifications, and enrolment requests.

    ``approval_required``: only requests approved in PSIber (``approved_at`` set) are enrolled.
    ``student_role_id``: the site's student role (5 on a default install). Enrolments go to Moodle
    ``batch_size`` per call (within ``moodle_max_input_vars``); assignments and quizzes are read for
    ``courses_per_call`` courses per call.
    """

    offers: tuple[EssOffer, ...] = ()
    approval_required: bool = False
    student_role_id: Annotated[int, Field(ge=1)] = 5
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    courses_per_call: Annotated[int, Field(ge=1, le=1000)] = 100


class DepartedEmployees(StrEnum):
    """What becomes of the Moodle account of a linked employee who left the extract (payroll no longer
    covered, or the record deleted from PSIber)."""

    suspend = "suspend"
    keep = "keep"


class UserSync(StrictSettings):
    """``extended_username_chars`` mirrors Moodle's setting of that name (off by default).

    An employment status must be one of ``active_statuses`` or ``inactive_statuses`` (compared
    without case): anything else is a record HR must fix, never guessed to be inactive.
    A record Moodle refused is not sent again until its PSIber data changes, the run is
    triggered with ``retry_refused=true``, or ``retry_refused_after_days`` have passed.
    A night reads the Moodle accounts of employees who changed; every ``full_sync_every_days`` (or when the run is
    triggered with ``full_users_sync=true``) it reads every linked account, for what an administrator changed in
    Moodle.
    """

    active_statuses: tuple[Annotated[str, Field(min_length=1)], ...] = ("Active",)
    inactive_statuses: tuple[Annotated[str, Field(min_length=1)], ...] = (
        "Terminated", "Resigned", "Retired", "Dismissed", "Deceased", "Inactive")
    departed_employees: DepartedEmployees = DepartedEmployees.suspend
    retry_refused_after_days: Annotated[int, Field(ge=1)] = 7
    full_sync_every_days: Annotated[int, Field(ge=1)] = 7
    extended_username_chars: bool = False
    new_user_passwords: NewUserPasswords = NewUserPasswords()
    profile_field_matches: tuple[ProfileFieldMatch, ...] = ()
    batch_size: Annotated[int, Field(ge=1, le=500)] = 50

    @model_validator(mode="after")
    def _statuses_do_not_overlap(self) -> UserSync:
        both = {s.casefold() for s in self.active_statuses} & {s.casefold() for s in self.inactive_statuses}
        if both:
            raise ValueError(f"statuses {', '.join(sorted(both))} are both active and inactive")
        if not self.active_statuses:
            raise ValueError("'active_statuses' must list at least one status")
        return self

    @property
    def known_statuses(self) -> tuple[str, ...]:
        return self.active_statuses + self.inactive_statuses


class Safety(StrictSettings):
    """Thresholds that stop a run before it writes, when the input looks wrong."""

    max_invalid_share: Share = 0.10
    max_suspend_share: Share = 0.20
    min_users_for_suspend_guard: Annotated[int, Field(ge=0)] = 10


class Timeouts(StrictSettings):
    """How long a task may run (its ``execution_timeout``) before Airflow stops it and retries it:
    a stuck task would hold the integration, since no later run starts while one is running.

    ``step_minutes``: any task. ``population_minutes``: tasks that call Moodle for every
    employee (the user look-up, the apply, the activity check). A mapped read task gets
    ``step_minutes`` plus ``moodle_call_seconds`` per call its batch may make (see ``results``).
    """

    step_minutes: Annotated[int, Field(ge=1)] = 30
    population_minutes: Annotated[int, Field(ge=1)] = 120
    moodle_call_seconds: Annotated[int, Field(ge=1)] = 10


class Integration(IntegrationSettings):
    """One Moodle site + one PSIber company (and the payrolls it covers); ``timezone`` is the Moodle site's."""

    enabled: bool = True
    psiber_conn_id: ConnectionId
    payrolls: Literal["all"] | tuple[Annotated[str, Field(min_length=1)], ...] = "all"
    pass_result: Annotated[str, Field(min_length=1)]
    fail_result: Annotated[str, Field(min_length=1)]
    pseudo_email_domain: str
    flows: tuple[Literal["users", "courses", "results", "ess"], ...] = ("users", "courses", "results")
    users: UserSync = UserSync()
    courses: CourseSync = CourseSync()
    results: ResultSync = ResultSync()
    moodle_reports: MoodleReports | None = None
    ess: EssSync = EssSync()
    safety: Safety = Safety()
    timeouts: Timeouts = Timeouts()

    @field_validator("pseudo_email_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError(f"'{value}' is not a domain name like 'jhb.com'")
        return value.lower()

    @property
    def reported_flows(self) -> tuple[str, ...]:
        """The flows a run's summary counts: those chosen, and the field matching every run does."""
        return (*self.flows, "fields")

    @field_validator("flows")
    @classmethod
    def _flows_need_users_and_courses(cls, value):
        if "results" in value and not {"users", "courses"} <= set(value):
            raise ValueError("'results' needs the 'users' and 'courses' flows too (results are linked through them)")
        if "ess" in value and not {"users", "courses"} <= set(value):
            raise ValueError("'ess' needs the 'users' and 'courses' flows too (employees' accounts and Moodle's "
                             "courses come from them)")
        return value

    @model_validator(mode="after")
    def _ess_offers_something(self) -> Integration:
        if "ess" in self.flows and not self.ess.offers:
            raise ValueError("the 'ess' flow needs at least one rule in 'ess.offers' (which courses ESS offers)")
        return self

    @field_validator("payrolls")
    @classmethod
    def _payrolls_not_empty(cls, value):
        if value != "all" and not value:
            raise ValueError("list at least one payroll, or write 'all'")
        return value


def load_integration(path: Path) -> Integration:
    """Read and check one integration file; errors name the file, the field and who fixes it."""
    return load_settings_file(path, Integration, IntegrationConfigError, CONFIG_OWNER)


def load_integrations(folder: Path) -> tuple[dict[Path, Integration], dict[Path, IntegrationConfigError]]:
    """Every ``*.yaml`` in ``folder``: the good ones and, separately, the errors of the bad ones."""
    return load_settings_folder(folder, load_integration, IntegrationConfigError, CONFIG_OWNER)

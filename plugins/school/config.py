"""School integration settings: one YAML file per school in include/integrations/school/, checked before any DAG
is built. The settings are those of KnowledgeNET's "Moodle Configuration" page in the rollover guide.

The file holds no secrets: the Moodle URL and token and the school MIS database live in Airflow Connections,
referenced here by id.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from sync_common.settings_files import (
    ConnectionId,
    IntegrationSettings,
    Share,
    StrictSettings,
    load_settings_file,
    load_settings_folder,
)

CONFIG_OWNER = "the data engineer who maintains the school integration files"
FLOWS = ("people", "classes", "enrolments")
# Course formats of a standard Moodle 4.5; a site with a format plugin lists it in extra_course_formats
# (Moodle stores an unknown format silently and shows the course as topics).
CORE_COURSE_FORMATS = ("topics", "weeks", "singleactivity", "social")


class SchoolConfigError(ValueError):
    """A school integration file that cannot be used; the message names the file and the field."""


PluginName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Synchronisation(StrEnum):
    """"Enable KN to Moodle Synchronisation": disabled (no run writes; a preview may still be triggered),
    enabled (on the schedule) or enabled, snapshot only (no schedule: runs when triggered)."""

    disabled = "disabled"
    enabled = "enabled"
    snapshot_only = "enabled_snapshot_only"


class ProvisioningMode(StrEnum):
    """Which classes of a group type become Moodle courses (the guide's five options)."""

    always_disabled = "always_disabled"
    disabled = "disabled"  # unless enabled per class
    enabled_for_non_sms_controlled = "enabled_for_non_sms_controlled"
    enabled_for_sms_controlled = "enabled_for_sms_controlled"
    enabled = "enabled"  # unless disabled per class


class CourseDeletion(StrEnum):
    """"Allow deletion of courses" for courses whose class left the MIS or is no longer provisioned."""

    dont_delete = "dont_delete"
    delete_only_empty = "delete_only_empty"  # no user enrolled in it (by any method)
    delete = "delete"


class GroupType(StrictSettings):
    """How the classes of one MIS group type are provisioned; ``category`` is the Moodle course category's ID
    number (category ids differ from site to site)."""

    provisioning: ProvisioningMode
    category: Annotated[str, Field(min_length=1, max_length=100)]
    format: PluginName = "topics"
    visible: bool = True


class Deletion(StrictSettings):
    """What the sync may delete in Moodle; by default nothing (the guide's setting before a rollover)."""

    users: bool = False
    enrolments: bool = False
    courses: CourseDeletion = CourseDeletion.dont_delete


class Roles(StrictSettings):
    """The Moodle role ids a membership's role becomes (a default install: student 5, editingteacher 3); no web
    service lists roles, so a site with other ids says so here."""

    student: Annotated[int, Field(ge=1)] = 5
    teacher: Annotated[int, Field(ge=1)] = 3


class NewUsers(StrictSettings):
    """How new Moodle users log in: ``auth`` is the Moodle authentication plugin; with ``manual`` Moodle makes a
    password and e-mails it (the school's SSO plugins, e.g. ``oauth2``, need none)."""

    auth: PluginName = "manual"


class Safety(StrictSettings):
    """Thresholds that stop a run before it writes when the MIS data looks wrong: more invalid records than
    ``max_invalid_share``, or more suspensions/deletions of users, deletions of courses or unenrolments than
    ``max_change_share`` of what is linked (checked from ``min_records_for_guard`` records up)."""

    max_invalid_share: Share = 0.10
    max_change_share: Share = 0.20
    min_records_for_guard: Annotated[int, Field(ge=0)] = 10


class SchoolIntegration(IntegrationSettings):
    """One school MIS database + one Moodle site; ``timezone`` is the school's (course dates are taken in it)."""

    synchronisation: Synchronisation = Synchronisation.enabled
    school_conn_id: ConnectionId
    academic_year_start: Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")] = Field(
        default="01-01", description="MM-DD on which an academic year starts: a class's course starts then.")
    group_types: dict[Annotated[str, Field(min_length=1)], GroupType] = Field(min_length=1)
    deletion: Deletion = Deletion()
    roles: Roles = Roles()
    new_users: NewUsers = NewUsers()
    extra_course_formats: tuple[PluginName, ...] = ()
    safety: Safety = Safety()
    batch_size: Annotated[int, Field(ge=1, le=500)] = 100
    retry_refused_after_days: Annotated[int, Field(ge=1)] = Field(
        default=7, description="A person or class Moodle refused is not sent again, unchanged, for this many days "
        "(or until a run triggered with retry_refused=true).")
    step_minutes: Annotated[int, Field(ge=1)] = Field(default=60, description="Each task's execution_timeout.")

    @field_validator("academic_year_start")
    @classmethod
    def _day(cls, value: str) -> str:
        try:
            date.fromisoformat(f"2000-{value}")
        except ValueError:
            raise ValueError(f"'{value}' is not a month and day like '01-15'") from None
        return value

    @model_validator(mode="after")
    def _known_formats(self) -> SchoolIntegration:
        known = (*CORE_COURSE_FORMATS, *self.extra_course_formats)
        for name, group_type in self.group_types.items():
            if group_type.format not in known:
                raise ValueError(f"group type '{name}': course format '{group_type.format}' is not one of "
                                 f"{', '.join(known)} (a format plugin of the site goes in extra_course_formats)")
        return self

    @property
    def reported_flows(self) -> tuple[str, ...]:
        """The flows a run's summary counts."""
        return FLOWS

    @property
    def scheduled(self) -> bool:
        return self.synchronisation is Synchronisation.enabled

    def course_dates(self, academic_year: int) -> tuple[int, int]:
        """The Moodle start and end (Unix times) of a class's course: the academic year, in the school's time."""
        month, day = (int(part) for part in self.academic_year_start.split("-"))
        start = datetime.combine(date(academic_year, month, day), time(), self.zone)
        end = datetime.combine(date(academic_year + 1, month, day), time(), self.zone)
        return int(start.timestamp()), int(end.timestamp()) - 1


def load_school_integration(path: Path) -> SchoolIntegration:
    """Read and check one school integration file; errors name the file, the field and who fixes it."""
    return load_settings_file(path, SchoolIntegration, SchoolConfigError, CONFIG_OWNER)


def load_school_integrations(folder: Path) -> tuple[dict[Path, SchoolIntegration], dict[Path, SchoolConfigError]]:
    """Every ``*.yaml`` in ``folder`` (include/integrations/school/): the good ones and, separately, the errors of
    the bad ones."""
    return load_settings_folder(folder, load_school_integration, SchoolConfigError, CONFIG_OWNER)

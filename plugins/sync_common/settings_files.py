"""Integration files, whatever the source system: a folder of YAML files, each checked against a typed settings
model before any DAG is built; a bad file becomes an error naming the file, the field and who fixes it, and
leaves the good files usable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sync_common.notifications import NotificationSettings


class KeyedSettings(Protocol):
    name: str

    @property
    def key(self) -> str: ...


Settings = TypeVar("Settings", bound=BaseModel)
Loaded = TypeVar("Loaded", bound=KeyedSettings)
Error = TypeVar("Error", bound=ValueError)


def load_settings_file(path: Path, model: type[Settings], error: type[ValueError], owner: str) -> Settings:
    """Read and check one file; ``error`` (the source system's config error) names the file, the field and
    ``owner``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as failure:
        raise error(f"{path}: cannot be read as YAML ({failure}); owner: {owner}") from failure
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of settings; owner: {owner}")
    try:
        return model.model_validate(raw)
    except ValidationError as failure:
        problems = "; ".join(
            f"field '{'.'.join(str(part) for part in issue['loc']) or '(top)'}': {issue['msg']}"
            for issue in failure.errors()
        )
        raise error(f"{path}: {problems}; owner: {owner}") from None


def load_settings_folder(folder: Path, load: Callable[[Path], Loaded], error: type[Error],
                         owner: str) -> tuple[dict[Path, Loaded], dict[Path, Error]]:
    """Every ``*.yaml`` directly in ``folder`` (not in its subfolders): the good ones and, separately, the errors
    of the bad ones. Two files whose names make the same key would make one DAG: the later one is an error."""
    good: dict[Path, Loaded] = {}
    bad: dict[Path, Error] = {}
    for path in sorted(folder.glob("*.y*ml")):
        try:
            good[path] = load(path)
        except error as failure:
            bad[path] = failure
    keys: dict[str, Path] = {}
    for path, settings in list(good.items()):
        if settings.key in keys:
            bad[path] = error(f"{path}: field 'name': '{settings.name}' is already used by {keys[settings.key]}; "
                              f"owner: {owner}")
            del good[path]
        else:
            keys[settings.key] = path
    return good, bad


SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")


def checked_schedule(value: str) -> str:
    """A cron expression or one of Airflow's presets, checked when the file loads, not at the first run."""
    from croniter import croniter

    if value not in SCHEDULE_PRESETS and not croniter.is_valid(value):
        raise ValueError(f"'{value}' is neither a cron expression nor one of {', '.join(SCHEDULE_PRESETS)}")
    return value


def checked_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not a time zone name like 'Africa/Johannesburg'") from None
    return value


ConnectionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class StrictSettings(BaseModel):
    """Settings that refuse unknown fields (a misspelt setting is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegrationSettings(StrictSettings):
    """What every kind's integration file has: its name (and the key made of it), its schedule, its Moodle site, its
    time zone, and where and how long its runs keep their files and reports. Each kind's settings model extends
    it with its source system's own."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    schedule: str = "@daily"
    moodle_conn_id: ConnectionId
    timezone: str = Field(default="UTC", description="The time zone dates are taken in.")
    moodle_max_input_vars: Annotated[int, Field(ge=1000)] = Field(
        default=5000, description="PHP's max_input_vars on the Moodle site: a call with more form variables is "
        "silently cut, so every call stays under it.")
    data_dir: str | None = Field(default=None, description="Where runs keep their working files.")
    keep_run_files_days: Annotated[int, Field(ge=1)] = 30
    keep_reports_days: Annotated[int, Field(ge=1)] = Field(
        default=400, description="How long each run's sync report stays in the report tables.")
    notifications: NotificationSettings | None = Field(
        default=None, description="Who is told of a failed run, and which owner of their problem records.")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return checked_time_zone(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return checked_schedule(value)

    @property
    def key(self) -> str:
        """Stable identifier of the integration, used in DAG ids and link rows."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

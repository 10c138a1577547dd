"""HR export file integrations: one YAML file per integration, checked before any DAG is built.

For HR systems that can only export files: the export (CSV or Parquet, as Totara's HR Import and Moodle's user
upload take them) is read from a local folder or object storage, and its employees become Moodle users through
the same users flow as PSIber's. The file holds no secrets: Moodle, the object store and the state database
are Airflow Connections, referenced here by id.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from psiber.config import Integration, Safety, Timeouts, UserSync
from sync_common.settings_files import ConnectionId, IntegrationSettings, StrictSettings

CONFIG_OWNER = "the data engineer who maintains the integration files"
INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"
_COLUMN = Annotated[str, Field(min_length=1, max_length=200)]


class HrFileConfigError(ValueError):
    """An HR file integration file that cannot be used; the message names the file and the field."""


class ExportFile(StrictSettings):
    """Where the HR system leaves its export, and how it is written.

    ``path``: a local file (relative to the project's ``include/`` folder, or absolute) or an object in object
    storage as Airflow's ``ObjectStoragePath`` takes it, the Connection in the URL (``s3://aws_hr@bucket/hr.csv``).
    ``format``: ``csv`` or ``parquet``, from the name's suffix when left out. A CSV is read as text, every value
    as written (employee numbers like ``007`` stay so), in ``encoding`` (UTF-8 by default; the byte-order
    mark spreadsheet programs write first is skipped).
    """

    path: Annotated[str, Field(min_length=1)]
    format: Literal["csv", "parquet"] | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _encoding_known(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"'{value}' is not a text encoding Python knows, like 'utf-8' or 'cp1252'") from None
        return value

    @model_validator(mode="after")
    def _format_known(self) -> ExportFile:
        if self.format is None and self.file_format is None:
            raise ValueError(f"cannot tell the format of '{self.path}' from its name: set 'format' to csv or parquet")
        return self

    @property
    def file_format(self) -> str | None:
        suffix = self.path.rsplit(".", 1)[-1].lower() if "." in self.path.rsplit("/", 1)[-1] else ""
        return self.format or {"csv": "csv", "txt": "csv", "parquet": "parquet", "pq": "parquet"}.get(suffix)

    @property
    def is_object_storage(self) -> bool:
        return "://" in self.path and not self.path.startswith("file://")

    @property
    def local_path(self) -> Path:
        path = Path(self.path.removeprefix("file://"))
        return path if path.is_absolute() else INCLUDE_DIR / path


class ExportColumns(StrictSettings):
    """The export's column for each employee element; the defaults are Totara HR Import's and Moodle user
    upload's names. ``id_number`` and ``passport_number`` (from which a pseudo e-mail is made for an employee
    without e-mail) may be left out when the export has no such column."""

    employee_number: _COLUMN = "idnumber"
    first_name: _COLUMN = "firstname"
    surname: _COLUMN = "lastname"
    email: _COLUMN = "email"
    employment_status: _COLUMN = "status"
    id_number: _COLUMN | None = None
    passport_number: _COLUMN | None = None


class ExportFieldMatch(StrictSettings):
    """A Moodle user profile field filled from a column of the export (``profile_field_<name>`` in Moodle's user
    upload, ``customfield_<name>`` in Totara's HR Import). ``menu_options`` lists a drop-down field's options: a
    value outside them is a record-level warning (Moodle would silently store nothing)."""

    moodle_field: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")]
    column: _COLUMN
    menu_options: tuple[str, ...] | None = None

    @property
    def element(self) -> str:
        """The employee column the field is filled from, as the users flow reads it."""
        return self.column


class FileUserSync(UserSync):
    """The users flow's settings (statuses, departed employees, passwords, batches), with profile fields taken
    from the export's columns."""

    profile_field_matches: tuple[ExportFieldMatch, ...] = ()  # type: ignore[assignment]


class MoodleReads(StrictSettings):
    """How many Moodle look-ups of users a run asks at a time."""

    max_parallel_reads: Annotated[int, Field(ge=1, le=64)] = 4


class HrFileIntegration(IntegrationSettings):
    """One HR export file + one Moodle site; links, refusals and reports are kept in the state database
    (Connection ``state_conn_id``: SQLite or PostgreSQL, the same tables as PSIber's)."""

    enabled: bool = True
    state_conn_id: ConnectionId
    export: ExportFile
    columns: ExportColumns = ExportColumns()
    pseudo_email_domain: str
    users: FileUserSync = FileUserSync()
    safety: Safety = Safety()
    timeouts: Timeouts = Timeouts()
    results: MoodleReads = Field(default=MoodleReads(), description="Moodle reads (the users flow's look-ups).")

    @field_validator("pseudo_email_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return Integration._domain(value)

    @model_validator(mode="after")
    def _columns_distinct(self) -> HrFileIntegration:
        named = [column for column in self.columns.model_dump().values() if column]
        twice = sorted({column for column in named if named.count(column) > 1})
        if twice:
            raise ValueError(f"columns {', '.join(twice)} are given to more than one employee element")
        return self

    @property
    def flows(self) -> tuple[str, ...]:
        return ("users",)

    @property
    def reported_flows(self) -> tuple[str, ...]:
        return ("users",)

    @property
    def payroll_code(self) -> str:
        """The export's employees stand in the state database as one payroll of PSIber's tables."""
        return f"file:{self.key}"[:40]

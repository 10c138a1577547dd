"""The HR system's export: read it (CSV or Parquet, a local file or object storage) and map its columns onto the
employee frame the users flow takes.

An export that cannot be used as a whole (missing, unreadable, empty, a column missing) stops the run before
anything is written: synced anyway, it would suspend everyone it seems to have lost. Its error names the file and
who must fix it. Rows are checked one by one later, by the users flow's validation; each row carries its line
(``source_location``), which a rejected record's name then gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hr_file.config import ExportFile, HrFileIntegration
from sync_common.employee_source import EmployeeSource
from sync_common.errors import PermanentStepError

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

OWNER_HR_SYSTEM = "HR system administrator"
HR_EXPORT = EmployeeSource(
    name="HR", owner=OWNER_HR_SYSTEM, unnamed="(no employee number)",
    left="employee is no longer in the HR export", gone="employee is no longer in the HR export",
    gone_record="HR export employee #{employee_id}")
# Employee elements PSIber's tables have and an export does not: the users flow reads them, empty.
_NOT_IN_EXPORTS = ("employment_type", "gender", "disability")


class HrExportError(PermanentStepError):
    """An export that cannot be used as a whole: the run stops before anything is written."""


def _refused(export: ExportFile, problem: str) -> HrExportError:
    return HrExportError(f"HR export {export.path}: {problem}; nothing was synced (owner: {OWNER_HR_SYSTEM})")


def read_export(export: ExportFile) -> pd.DataFrame:
    """Every row of the export with every value as text (None where empty), as the HR system wrote it."""
    import pandas as pd
    import pyarrow

    path: Path | ObjectStoragePath = export.local_path
    if export.is_object_storage:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(export.path)
    try:
        with path.open("rb") as stream:
            if export.file_format == "csv":
                frame = pd.read_csv(stream, dtype=str, keep_default_na=False, sep=export.delimiter,
                                    encoding=export.encoding)
            else:
                frame = pd.read_parquet(stream)
    except (ConnectionError, TimeoutError):  # the object store out of reach for now: the task's retry reads again
        raise
    except FileNotFoundError:
        raise _refused(export, "the file does not exist (has the HR system's export run?)") from None
    except pd.errors.EmptyDataError:
        raise _refused(export, "the file is empty") from None
    except (OSError, ValueError, UnicodeError, pyarrow.ArrowException) as error:  # pandas' parser errors included
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise _refused(export, f"cannot be read as {export.file_format} ({type(error).__name__}: {first_line})") \
            from None
    if frame.empty:
        raise _refused(export, "the file has no employee rows (an empty export would suspend every account)")
    frame = frame.astype(object).where(frame.notna(), None).map(
        lambda value: None if value is None or (isinstance(value, str) and not value.strip()) else str(value))
    return frame.astype(object).where(frame.notna(), None)  # text columns hold a missing value as NaN


def employee_frame(export: pd.DataFrame, integration: HrFileIntegration) -> pd.DataFrame:
    """The employee frame the users flow takes (``psiber.employee_validation.COLUMNS``, the profile field columns
    and each row's ``source_location``), without ``employee_id`` yet. A column the integration file names and the
    export lacks stops the run."""
    import pandas as pd

    columns = integration.columns
    named = {element: column for element, column in columns.model_dump().items() if column}
    profile = [match.column for match in integration.users.profile_field_matches]
    missing = [column for column in [*named.values(), *profile] if column not in export.columns]
    if missing:
        raise _refused(integration.export, f"has no column {', '.join(repr(c) for c in missing)} (named in the "
                       f"integration file's 'columns' and 'users.profile_field_matches'; the export's columns: "
                       f"{', '.join(map(str, export.columns))})")
    where = integration.export.path.rsplit("/", 1)[-1]
    line = "line {}" if integration.export.file_format == "csv" else "row {}"
    first = 2 if integration.export.file_format == "csv" else 1  # a CSV's first line is its header
    frame = pd.DataFrame({
        element: export[named[element]] if element in named else None
        for element in ("employee_number", "first_name", "surname", "email", "id_number", "passport_number",
                        "employment_status")
    }, dtype=object)
    frame = frame.assign(payroll_code=integration.payroll_code, known_payroll_code=integration.payroll_code,
                         **{element: None for element in _NOT_IN_EXPORTS})
    for column in profile:
        frame[column] = export[column]
    frame["source_location"] = [f"{where} {line.format(first + position)}" for position in range(len(frame))]
    return frame

"""Employees' names beside their employee numbers in the sync report (``IntegrationKind.record_names``): read from
the employees the run extracted, which the HR export file kind leaves in the same file."""

from __future__ import annotations

from collections.abc import Collection

from sync_common.record_names import names_in_run_file
from sync_common.run_files import RunPath


def employee_names(run_dir: RunPath, wanted: Collection[str] | None = None) -> dict[str, str]:
    """Employee number → 'first name surname' of the employees this run extracted (the ``wanted`` ones)."""
    from psiber.user_sync import EMPLOYEES  # the users flow's modules, imported when a run is summarised

    return names_in_run_file(run_dir / EMPLOYEES, "employee_number", ("first_name", "surname"), wanted)

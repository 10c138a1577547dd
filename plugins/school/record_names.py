"""Teachers' and students' names beside their External IDs in the sync report (``IntegrationKind.record_names``):
read from the people the run extracted from the MIS."""

from __future__ import annotations

from collections.abc import Collection

from sync_common.record_names import names_in_run_file
from sync_common.run_files import RunPath


def people_names(run_dir: RunPath, wanted: Collection[str] | None = None) -> dict[str, str]:
    """External ID → 'first name last name' of the people this run extracted (the ``wanted`` ones)."""
    from school.mis_extract import extracted  # the MIS steps' module, imported when a run is summarised

    return names_in_run_file(run_dir / extracted("people"), "external_id", ("first_name", "last_name"), wanted)

"""Where the employees of a users flow come from, as its messages name it.

The users flow (validation, pseudo-e-mail, field matching, plan, apply, links, quarantine) is the same whatever
system the employees are read from; only the extract step differs. Its messages tell who corrects a record and
where, so each source system gives its own words here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sync_common.targeted_records import matching


@dataclass(frozen=True)
class EmployeeSource:
    """``name``: where a record is corrected ("correct it in <name>"); ``owner``: who corrects it;
    ``unnamed``: how a record without employee number is named (a template over its row's columns);
    ``left``: why a linked employee the source still has, but not in the integration's extract, is suspended;
    ``gone``: why one whose record the source no longer has is; ``gone_record``: how the latter is named (a
    template over ``employee_id``); ``listed``: in a targeted run, the employee numbers it syncs (as
    ``targeted_records.matching`` compares them), the only employees it may take for leavers; empty in a whole
    run."""

    name: str
    owner: str
    unnamed: str
    left: str
    gone: str
    gone_record: str
    listed: frozenset[str] = frozenset()

    def targeted(self, employee_numbers: Iterable[str]) -> EmployeeSource:
        """The source as a targeted run of ``employee_numbers`` reads it (no numbers: as a whole run does)."""
        return replace(self, listed=matching(employee_numbers))

    def syncs(self, employee_number) -> bool:
        """Whether this run syncs the employee: every one in a whole run, the listed ones in a targeted run."""
        return not self.listed or str(employee_number or "").strip().casefold() in self.listed

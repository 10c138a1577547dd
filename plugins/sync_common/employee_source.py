"""Where the employees of a users flow come from, as its messages name it.

The users flow (validation, pseudo-e-mail, field matching, plan, apply, links, quarantine) is the same whatever
system the employees are read from; only the extract step differs. Its messages tell who corrects a record and
where, so each source system gives its own words here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmployeeSource:
    """``name``: where a record is corrected ("correct it in <name>"); ``owner``: who corrects it;
    ``unnamed``: how a record without employee number is named (a template over its row's columns);
    ``left``: why a linked employee the source still has, but not in the integration's extract, is suspended;
    ``gone``: why one whose record the source no longer has is; ``gone_record``: how the latter is named (a
    template over ``employee_id``)."""

    name: str
    owner: str
    unnamed: str
    left: str
    gone: str
    gone_record: str

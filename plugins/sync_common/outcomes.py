"""Record-level outcomes of a run: what happened to one record, why, and who can fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass

OWNER_MOODLE_ADMIN = "Moodle administrator"
OWNER_NONE = ""

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


@dataclass(frozen=True)
class Outcome:
    """``record`` is what support searches the source system for: an employee number, a course code."""

    record: str | None
    action: str
    reason: str = ""
    owner: str = OWNER_NONE
    flow: str = "users"

    def to_dict(self) -> dict:
        """As ``dataclasses.asdict`` gives it, without its recursive deep copy (a run has an outcome per record)."""
        return {"record": self.record, "action": self.action, "reason": self.reason, "owner": self.owner,
                "flow": self.flow}


def mask_emails(text: str) -> str:
    """Hide the local part of any e-mail in a message bound for logs or reports."""
    return _EMAIL.sub(lambda match: f"{match.group(1)}***@{match.group(2)}", text)

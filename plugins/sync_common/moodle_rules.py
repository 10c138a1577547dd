"""What Moodle 4.5 refuses in a user record, whatever the source system (checked before any call), how it marks
its site course, and how it shows an account an administrator deleted."""

from __future__ import annotations

import re

# What PHP's FILTER_VALIDATE_EMAIL (behind Moodle's validate_email) accepts, in ASCII: a dot-atom local
# part of at most 64 characters, and a domain of at least two labels (so "user@localhost" is refused).
EMAIL_REGEX = (
    r"^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$"
)
# Moodle's user table columns (4.5): firstname, lastname, email and username are varchar(100), idnumber 255.
MOODLE_TEXT_LENGTH = 100
MOODLE_IDNUMBER_LENGTH = 255
# Any text Moodle cleans refuses control characters (tab, line break, NUL).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
# Moodle cleans names as PARAM_NOTAGS and refuses a value that cleaning changed: no tags, so no < or >.
MARKUP = r"[<>]"
# The site course (the front page) that Moodle lists among the courses: never a course a flow syncs.
SITE_FORMAT = "site"

# An account an administrator deleted: Moodle 4.5 keeps its row, and get_users_by_field(id) still answers it as
# delete_user() left it (username '<e-mail>.<unix time>', e-mail the md5 hex of the old username, ID number and
# profile fields cleared; no 'deleted' key). Writes to it answer these codes. Recognised only from the whole shape
# or these answers: an e-mail that merely looks like hex is not enough.
DELETED_ACCOUNT_UPDATE_WARNING = "usernotupdateddeleted"
DELETED_ACCOUNT_ERROR = "userdeleted"
_DELETED_USERNAME = re.compile(r".+\.\d{9,}")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


def is_deleted_account(user: dict) -> bool:
    """Whether a user as get_users_by_field answers it is an account an administrator deleted."""
    return (_DELETED_USERNAME.fullmatch(str(user.get("username") or "")) is not None
            and _MD5_HEX.fullmatch(str(user.get("email") or "")) is not None
            and not user.get("idnumber") and not user.get("customfields"))


def deleted_account_reason(user_id: int, then: str) -> str:
    """The report's line for a link to a deleted account: which account, and what the run did instead."""
    return f"account deleted in Moodle by an administrator: Moodle user #{user_id}; the link to it is dropped, {then}"

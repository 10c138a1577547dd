"""What Moodle 4.5 refuses in a user record, whatever the source system (checked before any call), and how it marks
its site course."""

from __future__ import annotations

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

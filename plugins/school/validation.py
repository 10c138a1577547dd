"""Rules MIS people, classes and memberships must meet before they reach Moodle (GX expectations, through the
shared ``validate_frame``): everything Moodle would refuse, caught before any call, each bad record named with
all its reasons and who must fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from sync_common.moodle_rules import (
    CONTROL_CHARACTERS,
    EMAIL_REGEX,
    MARKUP,
    MOODLE_IDNUMBER_LENGTH,
    MOODLE_TEXT_LENGTH,
)
from sync_common.validation import FrameValidation, normalised_keys, rule, validate_frame

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

OWNER_MIS = "school MIS administrator"
ROLES = ("student", "teacher")
STATUSES = ("active", "left")
OVERRIDES = ("enabled", "disabled")
# Moodle's course table: idnumber varchar(100), shortname varchar(255), fullname varchar(254).
COURSE_IDNUMBER_LENGTH = 100
COURSE_NAME_LENGTH = 200
# PARAM_USERNAME without the site's extended characters: lower-case letters, digits and - . _ @.
USERNAME_REGEX = r"^[a-z0-9_.@-]+$"
_CLASS_NAMES = {"code": "class code", "name": "class name"}
_PERSON_FIELDS = {"external_id": "External ID", "first_name": "first name", "last_name": "last name",
                  "email": "e-mail", "username": "username"}


def _rules_for_external_id(x, of: str) -> list[Expectation]:
    """External IDs are compared as Moodle's ID numbers reach it and as people read them: trimmed and in any
    letter case (``id_key``). Two that differ only so are both invalid (which is the real one is the MIS's to
    say), and an ID with spaces at its ends is invalid rather than trimmed: sent as it is it would be a second
    Moodle account or course beside the real one's, and trimmed it would no longer match the MIS's own records."""
    return [
        rule(x.ExpectColumnValuesToBeUnique, f"External ID '{{external_id}}' is used by more than one {of} once "
             "spaces and letter case are ignored (Moodle would take them for one): keep one", column="id_key"),
        rule(x.ExpectColumnValuesToNotMatchRegex, "External ID has spaces at its start or end: remove them in the "
             "MIS", column="external_id", regex=r"^\s|\s$"),
    ]


def _with_id_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(id_key=normalised_keys(frame["external_id"]))


def _rules_for_text(x, fields: dict[str, str]) -> list[Expectation]:
    return [rule(x.ExpectColumnValuesToNotMatchRegex,
                 f"{name} contains control characters (a tab, line break or NUL), which Moodle refuses",
                 column=column, regex=CONTROL_CHARACTERS) for column, name in fields.items()]


def _person_rules() -> list[Expectation]:
    import great_expectations as gx

    x = gx.expectations
    rules = [
        rule(x.ExpectColumnValuesToNotBeNull, "External ID is missing", column="external_id"),
        *_rules_for_external_id(x, "person"),
        rule(x.ExpectColumnValueLengthsToBeBetween,
             f"External ID is longer than Moodle's {MOODLE_IDNUMBER_LENGTH} characters for an ID number",
             column="external_id", max_value=MOODLE_IDNUMBER_LENGTH),
        rule(x.ExpectColumnValuesToBeInSet, "role '{role}' is neither student nor teacher", column="role",
             value_set=list(ROLES)),
        rule(x.ExpectColumnValuesToBeInSet, "status '{status}' is neither active nor left", column="status",
             value_set=list(STATUSES)),
        rule(x.ExpectColumnValuesToNotBeNull, "first name is missing", column="first_name"),
        rule(x.ExpectColumnValuesToNotBeNull, "last name is missing", column="last_name"),
        rule(x.ExpectColumnValuesToNotBeNull, "e-mail is missing (Moodle needs one for every user)", column="email"),
        rule(x.ExpectColumnValuesToMatchRegex, "e-mail address is malformed (Moodle would refuse it)",
             column="email", regex=EMAIL_REGEX),
        rule(x.ExpectColumnValuesToBeUnique, "e-mail is used by more than one person (Moodle allows one account "
             "per e-mail)", column="email_key"),
        rule(x.ExpectColumnValuesToMatchRegex, "username has characters Moodle refuses in usernames (letters, "
             "digits and - . _ @ only)", column="login", regex=USERNAME_REGEX),
        rule(x.ExpectColumnValuesToBeUnique, "username is used by more than one person", column="login"),
    ]
    for column in ("first_name", "last_name", "email", "login"):
        name = _PERSON_FIELDS.get(column, "username")
        rules.append(rule(x.ExpectColumnValueLengthsToBeBetween,
                          f"{name} is longer than Moodle's {MOODLE_TEXT_LENGTH} characters", column=column,
                          max_value=MOODLE_TEXT_LENGTH))
    for column in ("first_name", "last_name"):
        rules.append(rule(x.ExpectColumnValuesToNotMatchRegex,
                          f"{_PERSON_FIELDS[column]} contains markup characters (< or >), which Moodle refuses",
                          column=column, regex=MARKUP))
    return rules + _rules_for_text(x, _PERSON_FIELDS)


def login_of(person: dict) -> str | None:
    """The Moodle username of a person: the MIS username where the school has one, else the e-mail; lower case,
    as Moodle keeps usernames."""
    for value in (person.get("username"), person.get("email")):
        if value is not None and not pd.isna(value) and str(value).strip():
            return str(value).strip().lower()
    return None


def validate_people(people: pd.DataFrame) -> FrameValidation:
    keyed = _with_id_key(people).assign(
        login=[login_of(row) for row in people.to_dict("records")],
        email_key=people["email"].map(lambda v: None if v is None or pd.isna(v) else str(v).strip().lower() or None))
    result = validate_frame(keyed, _person_rules, "external_id", OWNER_MIS, unnamed="MIS person without External ID")
    return FrameValidation(valid=result.valid.drop(columns=["login", "email_key", "id_key"]), invalid=result.invalid,
                           checked=result.checked, rejected=result.rejected)


def _class_rules() -> list[Expectation]:
    import great_expectations as gx

    x = gx.expectations
    return [
        rule(x.ExpectColumnValuesToNotBeNull, "External ID is missing", column="external_id"),
        *_rules_for_external_id(x, "class"),
        rule(x.ExpectColumnValueLengthsToBeBetween,
             f"External ID is longer than Moodle's {COURSE_IDNUMBER_LENGTH} characters for a course ID number",
             column="external_id", max_value=COURSE_IDNUMBER_LENGTH),
        rule(x.ExpectColumnValuesToNotBeNull, "class code is missing", column="code"),
        rule(x.ExpectColumnValuesToNotBeNull, "class name is missing", column="name"),
        rule(x.ExpectColumnValuesToNotBeNull, "group type is missing", column="group_type"),
        rule(x.ExpectColumnValueLengthsToBeBetween, f"class name is longer than {COURSE_NAME_LENGTH} characters",
             column="name", max_value=COURSE_NAME_LENGTH),
        rule(x.ExpectColumnValueLengthsToBeBetween, f"class code is longer than {COURSE_NAME_LENGTH} characters",
             column="code", max_value=COURSE_NAME_LENGTH),
        rule(x.ExpectColumnValuesToBeInSet, "SMS-controlled flag '{sms_controlled}' is neither 0 nor 1",
             column="sms_controlled", value_set=[0, 1]),
        rule(x.ExpectColumnValuesToBeInSet, "the class's provisioning setting '{provisioning_override}' is neither "
             "enabled, disabled nor empty", column="override_key", value_set=list(OVERRIDES)),
        rule(x.ExpectColumnValuesToNotBeNull, "academic year is missing", column="academic_year"),
        rule(x.ExpectColumnValuesToBeBetween, "academic year '{academic_year}' is not a year like 2027",
             column="academic_year", min_value=1970, max_value=2200),
        *[rule(x.ExpectColumnValuesToNotMatchRegex, f"{name} contains markup characters (< or >), which Moodle "
               "refuses in course names", column=column, regex=MARKUP) for column, name in _CLASS_NAMES.items()],
        *_rules_for_text(x, {"external_id": "External ID", **_CLASS_NAMES}),
    ]


def validate_classes(classes: pd.DataFrame) -> FrameValidation:
    keyed = _with_id_key(classes).assign(override_key=classes["provisioning_override"].map(
        lambda v: None if v is None or pd.isna(v) or not str(v).strip() else str(v).strip().lower()))
    result = validate_frame(keyed, _class_rules, "external_id", OWNER_MIS, unnamed="MIS class without External ID")
    return FrameValidation(valid=result.valid.drop(columns=["override_key", "id_key"]), invalid=result.invalid,
                           checked=result.checked, rejected=result.rejected)


def _membership_rules() -> list[Expectation]:
    import great_expectations as gx

    x = gx.expectations
    return [rule(x.ExpectColumnValuesToBeInSet, "membership role '{role}' is neither student nor teacher",
                 column="role", value_set=list(ROLES))]


def membership_record(person: str, klass: str) -> str:
    return f"{person} in {klass}"


def validate_memberships(memberships: pd.DataFrame) -> FrameValidation:
    named = memberships.assign(record=[membership_record(p, c) for p, c in zip(
        memberships["person_external_id"], memberships["class_external_id"], strict=True)])
    result = validate_frame(named, _membership_rules, "record", OWNER_MIS)
    return FrameValidation(valid=result.valid.drop(columns=["record"]), invalid=result.invalid,
                           checked=result.checked, rejected=result.rejected)

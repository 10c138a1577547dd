"""auth_email_get_signup_settings of the Moodle stand-in, written from Moodle 4.5's
auth/email/classes/external.php and user/profile/lib.php (read, not copied).

A data engineer's discovery command can list the user profile fields through this function (it
needs no capability), but only the fields flagged "Display on signup page" that are visible, and
only while e-mail self-registration is the site's registration plugin. The stand-in enables
self-registration and flags every seeded profile field for signup; set ``signup_enabled = False``
to get Moodle's "registrationdisabled" error.
"""

from __future__ import annotations

import re

from .courses import format_string
from .server import MoodleStandIn, moodle_exception, ws_function

# print_password_policy() with the default policy (lang/en/auth.php informpasswordpolicy + informmin*).
PASSWORD_POLICY = ("The password must have at least 8 characters, at least 1 digit(s), at least 1 lower case "
                   "letter(s), at least 1 upper case letter(s), at least 1 special character(s) such as *, -, or #")
PROFILE_CATEGORY_NAME = "Other fields"  # the category Moodle creates with the first profile field
PROFILE_FIELD_COLUMNS = ["id", "shortname", "name", "datatype", "description", "descriptionformat", "categoryid",
                         "categoryname", "sortorder", "required", "locked", "visible", "forceunique", "signup",
                         "defaultdata", "defaultdataformat", "param1", "param2", "param3", "param4", "param5"]
# mdl_user_info_field columns a seeded field may leave out, with the values a field made in the UI has.
PROFILE_FIELD_DEFAULTS = {"description": "", "descriptionformat": 1, "locked": 0, "forceunique": 0, "signup": 1,
                          "defaultdataformat": 0, "param2": None, "param3": None, "param4": None, "param5": None}


def _format_text(text: str | None) -> str:
    """util::format_text() of plain content: empty stays empty; defaultdataformat is answered as stored (0)."""
    return re.sub(r"<script.*?</script>", "", text or "", flags=re.S | re.I)


@ws_function("auth_email_get_signup_settings", {})
def get_signup_settings(site: MoodleStandIn) -> dict:
    if not site.signup_enabled:  # check_signup_enabled(): $CFG->registerauth != 'email'
        raise moodle_exception("registrationdisabled", "Registration is disabled on this site")
    result: dict = {"namefields": ["firstname", "lastname"], "passwordpolicy": PASSWORD_POLICY,
                    "extendedusernamechars": False}
    fields = []
    for field in sorted(site.profile_fields, key=lambda f: (f.get("categoryid", 1), f["sortorder"], f["id"])):
        field = {**PROFILE_FIELD_DEFAULTS, **field}
        if not field["signup"] or not field.get("visible", 2):  # profile_get_signup_fields()
            continue
        row = {key: field.get(key) for key in PROFILE_FIELD_COLUMNS}
        row["categoryname"] = format_string(field.get("categoryname", PROFILE_CATEGORY_NAME))
        row["name"] = format_string(field["name"])
        row["defaultdata"] = _format_text(field["defaultdata"])
        if field["datatype"] == "menu":  # the menu field's options again (its param2 column is NULL)
            row["param2"] = field["param1"]
        fields.append(row)
    if fields:
        result["profilefields"] = fields
    result["warnings"] = []
    return result

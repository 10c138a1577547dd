"""The Moodle web-service functions the integrations' flows call, each listed once with the flows that call it.

Every kind's required functions (its run's preflight), the connection's Test button and the README's function
tables are taken from ``FUNCTIONS``, and a test holds the flows' calls and the README to it: calling a new
function is this one entry (plus the call, and a recording the stand-in is held to). Imports nothing heavy:
DAG files and the providers manager read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SITE_INFO = "core_webservice_get_site_info"  # every run's preflight and the Test button ask it first

# Moodle's reading functions are named ..._get_..., ..._search_..., ..._view_... (a view only logs an event),
# ..._list_... or ..._retrieve_... (Report Builder's); every other function changes Moodle (create, update, delete,
# enrol, unenrol, assign, ...).
_READ_FUNCTION = re.compile(r"_(get|search|view|list|retrieve)_")
# Report Builder's filter calls store the token user's filter preference for a report: sent twice, the same
# value is stored, so they are as safe to send again as a read.
_STORES_A_PREFERENCE = {"core_reportbuilder_set_filters", "core_reportbuilder_filters_reset"}


def is_write(wsfunction: str) -> bool:
    """Whether a web-service function changes Moodle: the hook never sends one again once it may have run."""
    return not _READ_FUNCTION.search(wsfunction) and wsfunction not in _STORES_A_PREFERENCE


@dataclass(frozen=True)
class MoodleFunction:
    """A function the token's external service must include for ``flows`` (``optional``: a flow copes
    without it, so the preflight does not ask for it)."""

    name: str
    flows: tuple[str, ...]
    optional: bool = False

    @property
    def write(self) -> bool:
        return is_write(self.name)

    @property
    def on_request(self) -> bool:
        """Called only by flows an integration file turns on (see ON_REQUEST_FLOWS)."""
        return set(self.flows) <= ON_REQUEST_FLOWS


FUNCTIONS = (
    # "reports": the token user's time zone, which a report's dates are written in
    MoodleFunction("core_user_get_users_by_field", ("users", "results", "people", "reports")),
    MoodleFunction("core_user_get_users", ("users",)),
    MoodleFunction("core_user_create_users", ("users", "people")),
    MoodleFunction("core_user_update_users", ("users", "people")),
    MoodleFunction("core_user_delete_users", ("people",)),
    MoodleFunction("core_course_get_courses", ("courses", "classes")),
    MoodleFunction("core_course_get_categories", ("courses", "classes")),
    MoodleFunction("core_course_create_courses", ("classes",)),
    MoodleFunction("core_course_update_courses", ("classes",)),
    MoodleFunction("core_course_delete_courses", ("classes",)),
    MoodleFunction("core_enrol_get_users_courses", ("results",)),
    MoodleFunction("gradereport_user_get_grade_items", ("results",)),
    MoodleFunction("core_completion_get_course_completion_status", ("results",)),
    MoodleFunction("mod_assign_get_assignments", ("ess",)),
    MoodleFunction("mod_quiz_get_quizzes_by_courses", ("ess",)),
    MoodleFunction("core_enrol_get_enrolled_users", ("ess", "classes", "enrolments")),
    MoodleFunction("enrol_manual_enrol_users", ("ess", "enrolments")),
    MoodleFunction("enrol_manual_unenrol_users", ("enrolments",)),
    MoodleFunction("core_role_unassign_roles", ("enrolments",)),
    # Report Builder custom reports read in pages; required only when an integration configures its reports
    # (the "reports" flow is added to a run's flows then)
    MoodleFunction("core_reportbuilder_list_reports", ("reports",), optional=True),  # the hook's, no flow's
    MoodleFunction("core_reportbuilder_retrieve_report", ("reports",)),
    MoodleFunction("core_reportbuilder_set_filters", ("reports",)),
    MoodleFunction("core_reportbuilder_filters_reset", ("reports",)),
    # lists user profile fields with their menu options; without it the fields are reported unlisted
    MoodleFunction("auth_email_get_signup_settings", ("fields",), optional=True),
)
# Flows a run has only when its integration file asks for them (``moodle_reports``): a Connection's Test button does
# not ask the site for functions only they call.
ON_REQUEST_FLOWS = frozenset({"reports"})
BY_NAME = {function.name: function for function in FUNCTIONS}
FLOWS = tuple(dict.fromkeys(flow for function in FUNCTIONS for flow in function.flows))


def functions_of(flow: str) -> tuple[str, ...]:
    """The functions ``flow`` calls, optional ones included, in ``FUNCTIONS`` order."""
    if flow not in FLOWS:
        raise KeyError(f"no Moodle function lists the flow {flow!r}: add it to moodle_provider.functions.FUNCTIONS")
    return tuple(function.name for function in FUNCTIONS if flow in function.flows)


def required_functions(flows: Iterable[str]) -> tuple[str, ...]:
    """What the token's service must include for a run of ``flows``: the site's info, then every function those
    flows call that they cannot do without. A flow calling no function of Moodle's is allowed."""
    wanted = set(flows)
    return (SITE_INFO, *(function.name for function in FUNCTIONS
                         if not function.optional and wanted.intersection(function.flows)))

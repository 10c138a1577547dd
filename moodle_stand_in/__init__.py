"""A stand-in for a Moodle 4.5 site's REST web services, for tests and the local demo.

It is a real HTTP server on localhost with in-memory (optionally file-backed) state, so the
project's Moodle client is exercised over the same wire protocol as in production. Importing the
package registers every implemented function family.
"""

from . import (
    courses,  # noqa: F401  (core_course_get_courses/get_categories, core_enrol_*)
    ess,  # noqa: F401  (mod_assign/mod_quiz listings across courses, activities, enrolment methods)
    grades,  # noqa: F401  (gradereport_user_get_grade_items, core_completion_*)
    provisioning,  # noqa: F401  (course create/update/delete, manual enrolment, roles, user deletion)
    reportbuilder,  # noqa: F401  (core_reportbuilder_*: custom reports read by web services)
    signup,  # noqa: F401  (auth_email_get_signup_settings)
    users,  # noqa: F401  (registers the core_user_* functions)
)
from .server import FUNCTIONS, MoodleError, MoodleStandIn, ws_function

__all__ = ["FUNCTIONS", "MoodleError", "MoodleStandIn", "ws_function"]

"""F1 preflight: can this Moodle site serve the integration's flows? Fail fast, naming the owner."""

from __future__ import annotations

import logging

from moodle_provider.exceptions import MoodleFunctionUnavailableError
from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import Integration
from sync_common.errors import PermanentStepError

log = logging.getLogger(__name__)

# The web-service functions each flow calls: the token's external service must include them.
REQUIRED_FUNCTIONS = {
    "users": ("core_user_get_users_by_field", "core_user_get_users", "core_user_create_users",
              "core_user_update_users"),
    "courses": ("core_course_get_courses", "core_course_get_categories"),
    "results": ("core_user_get_users_by_field", "core_enrol_get_users_courses", "gradereport_user_get_grade_items",
                "core_completion_get_course_completion_status"),
    "ess": ("mod_assign_get_assignments", "mod_quiz_get_quizzes_by_courses", "core_enrol_get_enrolled_users",
            "enrol_manual_enrol_users"),
}


class IntegrationDisabledError(PermanentStepError):
    pass


def preflight(integration: Integration, hook: MoodleHook) -> dict:
    if not integration.enabled:
        raise IntegrationDisabledError(
            f"integration '{integration.name}' is disabled (enabled: false in its file); owner: PSIber setup"
        )
    info = hook.get_site_info()
    available = {function["name"] for function in info.get("functions", [])}
    needed = {name for flow in integration.flows for name in REQUIRED_FUNCTIONS[flow]}
    missing = sorted(needed - available)
    if missing:
        raise MoodleFunctionUnavailableError(
            f"the token's external service lacks {', '.join(missing)}; add them under Site administration > "
            "Server > Web services > External services > Functions",
            wsfunction="core_webservice_get_site_info",
        )
    log.info("Moodle site '%s' (%s) offers the %d functions needed", info.get("sitename"), info.get("release"),
             len(needed))
    return {"site": info.get("sitename"), "release": info.get("release"), "functions_checked": len(needed)}

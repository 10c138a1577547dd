"""Can this run go ahead: is synchronisation on (a preview may run while it is off), and does the Moodle site
offer every function the school flows call? Fail fast, naming the owner."""

from __future__ import annotations

import logging
from pathlib import Path

from moodle_provider.exceptions import MoodleFunctionUnavailableError
from moodle_provider.hooks.moodle import MoodleHook
from school.config import CONFIG_OWNER, SchoolIntegration, Synchronisation, load_school_integration
from school.step_files import hold_writes
from sync_common.errors import PermanentStepError

log = logging.getLogger(__name__)

# The web-service functions the school flows call: the token's external service must include them.
REQUIRED_FUNCTIONS = (
    "core_webservice_get_site_info", "core_user_get_users_by_field", "core_user_create_users",
    "core_user_update_users", "core_user_delete_users", "core_course_get_courses", "core_course_get_categories",
    "core_course_create_courses", "core_course_update_courses", "core_course_delete_courses",
    "core_enrol_get_enrolled_users", "enrol_manual_enrol_users", "enrol_manual_unenrol_users",
    "core_role_unassign_roles",
)


class SynchronisationDisabledError(PermanentStepError):
    pass


def preflight(integration: SchoolIntegration, hook: MoodleHook, preview: bool) -> dict:
    if integration.synchronisation is Synchronisation.disabled and not preview:
        raise SynchronisationDisabledError(
            f"synchronisation of '{integration.name}' is disabled (synchronisation: disabled in its file): nothing "
            "is written to Moodle. A preview (parameter preview=true) still shows what a run would do; owner: "
            f"{CONFIG_OWNER}")
    info = hook.get_site_info()
    missing = sorted(set(REQUIRED_FUNCTIONS) - {function["name"] for function in info.get("functions", [])})
    if missing:
        raise MoodleFunctionUnavailableError(
            f"the token's external service lacks {', '.join(missing)}; add them under Site administration > "
            "Server > Web services > External services > Functions", wsfunction="core_webservice_get_site_info")
    log.info("Moodle site '%s' (%s) offers the %d functions needed%s", info.get("sitename"), info.get("release"),
             len(REQUIRED_FUNCTIONS), " (preview: nothing is written)" if preview else "")
    return {"site": info.get("sitename"), "release": info.get("release"), "preview": preview}


def stop_if_disabled_meanwhile(source: Path, run_dir: Path, plans: list[str]) -> None:
    """Before each write step: the integration file is read again, since synchronisation may have been disabled
    after the run began (the guide's first rollover step: disable, then roll the MIS over). If it is disabled
    now, the run writes nothing more, and every write these plans hold is reported as not written."""
    integration = load_school_integration(source)
    if integration.synchronisation is not Synchronisation.disabled:
        return
    hold_writes(run_dir, plans, "synchronisation was disabled while this run was under way", CONFIG_OWNER)
    raise SynchronisationDisabledError(
        f"synchronisation of '{integration.name}' was disabled while this run was under way: nothing more is "
        "written to Moodle. Once synchronisation is enabled again, the next run writes what this one held back; "
        f"owner: {CONFIG_OWNER}")

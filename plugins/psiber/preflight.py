"""PSIber's preflight: a disabled integration refuses every run; the site must offer its chosen flows' functions,
and the Report Builder reports its file names (``moodle_reports``) must be there, shared and shaped as the README
says, with the web-service user's time zone one their dates can be read in."""

from __future__ import annotations

import logging

from moodle_provider.functions import required_functions
from moodle_provider.hooks.moodle import MoodleHook
from moodle_provider.report_builder import (
    ENROLMENT_RESULTS,
    USER_ACCESS,
    ReportLayout,
    check_report,
    token_user_time_zone,
)
from psiber.config import Integration
from sync_common import preflight as shared

log = logging.getLogger(__name__)

REPORTS_FLOW = "reports"  # the Report Builder functions, needed only by an integration that names its reports
REPORT_LAYOUTS: dict[str, ReportLayout] = {"enrolment_results": ENROLMENT_RESULTS, "user_access": USER_ACCESS}


def configured_reports(integration: Integration) -> dict[str, int]:
    """The integration file's ``moodle_reports`` that are set, by setting name."""
    if integration.moodle_reports is None:
        return {}
    return {name: report_id for name, report_id in integration.moodle_reports.model_dump().items() if report_id}


def preflight(integration: Integration, hook: MoodleHook) -> dict:
    disabled = None if integration.enabled else (
        f"integration '{integration.name}' is disabled (enabled: false in its file); owner: PSIber setup")
    reports = configured_reports(integration)
    flows = (*integration.reported_flows, *((REPORTS_FLOW,) if reports else ()))
    checked = shared.preflight(hook, required_functions(flows), disabled=disabled)
    if reports:
        for name, report_id in reports.items():
            for note in check_report(hook, report_id, REPORT_LAYOUTS[name]):
                log.warning("moodle_reports.%s (report %d): %s; its values fit, so it is read", name, report_id,
                            note)
        checked["reports_checked"] = len(reports)
        checked["report_time_zone"] = str(token_user_time_zone(hook))
    return checked

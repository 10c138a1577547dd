"""PSIber's preflight: a disabled integration refuses every run; the site must offer its chosen flows' functions."""

from __future__ import annotations

from moodle_provider.functions import required_functions
from moodle_provider.hooks.moodle import MoodleHook
from psiber.config import Integration
from sync_common import preflight as shared


def preflight(integration: Integration, hook: MoodleHook) -> dict:
    disabled = None if integration.enabled else (
        f"integration '{integration.name}' is disabled (enabled: false in its file); owner: PSIber setup")
    return shared.preflight(hook, required_functions(integration.reported_flows), disabled=disabled)

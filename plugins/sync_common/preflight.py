"""F1 preflight, every kind's first task: may this run go ahead, and does the Moodle site offer every function
its flows call? Fails fast, naming the owner.

A kind passes why its integration file does not allow the run (``disabled``, None when it does) and the functions
its flows need (``moodle_provider.functions.required_functions`` of the run's flows).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from moodle_provider.exceptions import MoodleFunctionUnavailableError
from moodle_provider.functions import SITE_INFO
from moodle_provider.hooks.moodle import MoodleHook
from sync_common.errors import PermanentStepError

log = logging.getLogger(__name__)


class IntegrationDisabledError(PermanentStepError):
    """The integration's file does not let this run write to Moodle."""


def preflight(hook: MoodleHook, functions: Collection[str], *, disabled: str | None = None) -> dict:
    """The site's name and release; raises before asking Moodle when ``disabled`` says why the run may not go,
    and names every function of ``functions`` the token's external service lacks."""
    if disabled:
        raise IntegrationDisabledError(disabled)
    info = hook.get_site_info()
    missing = sorted(set(functions) - {function["name"] for function in info.get("functions", [])})
    if missing:
        raise MoodleFunctionUnavailableError(
            f"the token's external service lacks {', '.join(missing)}; add them under Site administration > "
            "Server > Web services > External services > Functions", wsfunction=SITE_INFO)
    log.info("Moodle site '%s' (%s) offers the %d functions needed", info.get("sitename"), info.get("release"),
             len(set(functions)))
    return {"site": info.get("sitename"), "release": info.get("release"), "functions_checked": len(set(functions))}

"""Can this run go ahead: is synchronisation on (a preview may run while it is off), and does the Moodle site
offer every function the school flows call? Fail fast, naming the owner; and may a run under way go on writing."""

from __future__ import annotations

from pathlib import Path

from moodle_provider.functions import required_functions
from moodle_provider.hooks.moodle import MoodleHook
from school.config import CONFIG_OWNER, SchoolIntegration, Synchronisation, load_school_integration
from school.step_files import hold_writes
from sync_common import preflight as shared
from sync_common.run_files import RunPath


class SynchronisationDisabledError(shared.IntegrationDisabledError):
    pass


def preflight(integration: SchoolIntegration, hook: MoodleHook, preview: bool) -> dict:
    disabled = None
    if integration.synchronisation is Synchronisation.disabled and not preview:
        disabled = (f"synchronisation of '{integration.name}' is disabled (synchronisation: disabled in its file): "
                    "nothing is written to Moodle. A preview (parameter preview=true) still shows what a run would "
                    f"do; owner: {CONFIG_OWNER}")
    checked = shared.preflight(hook, required_functions(integration.reported_flows), disabled=disabled)
    return {**checked, "preview": preview}


def stop_if_disabled_meanwhile(source: Path, run_dir: RunPath, plans: list[str]) -> None:
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

"""PSIber's integrations as a kind: DAGs ``psiber_moodle_<key>``, one per file of include/integrations/."""

from __future__ import annotations

from pathlib import Path

from psiber.config import CONFIG_OWNER, Integration, IntegrationConfigError
from psiber.record_names import employee_names
from sync_common.integration_kinds import IntegrationKind, register

KIND = register(IntegrationKind(
    label="PSIber", dag_prefix="psiber_moodle_", folder_variable="PSIBER_MOODLE_INTEGRATIONS",
    default_folder=Path(__file__).resolve().parents[2] / "include" / "integrations",
    settings=Integration, config_error=IntegrationConfigError, config_owner=CONFIG_OWNER,
    report_conn_field="psiber_conn_id", record_label="Employee number or course code", course_status=True,
    record_names=employee_names,
    counted_actions={
        "users": ("extracted", "out_of_scope", "created", "updated", "suspended", "unsuspended", "unchanged",
                  "invalid", "conflict", "failed", "skipped", "warning"),
        "courses": ("in_moodle", "created", "updated", "unchanged", "deactivated", "invalid", "conflict", "warning"),
        "results": ("recorded", "invalid", "skipped", "warning"),
        "ess": ("offered", "notified", "requested", "enrolled", "refused"),
        "fields": ("warning",),
    }))

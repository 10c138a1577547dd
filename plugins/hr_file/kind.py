"""HR export file integrations as a kind: DAGs ``hr_file_moodle_<key>``, one per file of
include/integrations/hr_file/."""

from __future__ import annotations

from pathlib import Path

from hr_file.config import CONFIG_OWNER, HrFileConfigError, HrFileIntegration
from psiber.record_names import employee_names
from sync_common.integration_kinds import IntegrationKind, register

KIND = register(IntegrationKind(
    label="HR export file", dag_prefix="hr_file_moodle_", folder_variable="HR_FILE_MOODLE_INTEGRATIONS",
    default_folder=Path(__file__).resolve().parents[2] / "include" / "integrations" / "hr_file",
    settings=HrFileIntegration, config_error=HrFileConfigError, config_owner=CONFIG_OWNER,
    report_conn_field="state_conn_id", record_label="Employee number", course_status=False,
    record_names=employee_names,
    counted_actions={"users": ("extracted", "created", "updated", "suspended", "unsuspended", "unchanged",
                               "invalid", "conflict", "failed", "skipped", "warning")}))

"""The school MIS's integrations as a kind: DAGs ``school_moodle_<key>``, one per file of
include/integrations/school/."""

from __future__ import annotations

from pathlib import Path

from school.config import CONFIG_OWNER, SchoolConfigError, SchoolIntegration
from school.record_names import people_names
from sync_common.integration_kinds import IntegrationKind, register

KIND = register(IntegrationKind(
    label="School MIS", dag_prefix="school_moodle_", folder_variable="SCHOOL_MOODLE_INTEGRATIONS",
    default_folder=Path(__file__).resolve().parents[2] / "include" / "integrations" / "school",
    settings=SchoolIntegration, config_error=SchoolConfigError, config_owner=CONFIG_OWNER,
    report_conn_field="school_conn_id", record_label="External ID or course ID number",
    record_names=people_names))

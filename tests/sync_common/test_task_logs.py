"""A validating task's log holds its own lines, not Great Expectations' start-up chatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VALIDATE_WITH_INFO_LOGGING = """
import logging
logging.basicConfig(level=logging.INFO)
import pandas as pd
from sync_common.validation import rule, validate_frame  # as the DAG file does: GX is imported after it
import great_expectations.expectations as gxe
frame = pd.DataFrame({"employee_number": ["E1", "E2"], "surname": ["Smith", None]})
result = validate_frame(frame, lambda: [rule(gxe.ExpectColumnValuesToNotBeNull, "surname is missing",
                                             column="surname")], "employee_number", "PSIber HR")
logging.getLogger("task").info("invalid: %s", [problem.record for problem in result.invalid])
"""


def test_great_expectations_info_chatter_stays_out_of_a_validating_task_log():
    run = subprocess.run([sys.executable, "-c", VALIDATE_WITH_INFO_LOGGING], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": f"{ROOT / 'plugins'}", "PATH": ""}, timeout=120, check=True)
    log = run.stderr
    assert "INFO:task:invalid: ['E2']" in log  # the task's own line is there
    assert "Skipping registering function" not in log
    assert "INFO:great_expectations" not in log

"""The test tiers (tests/conftest.py): the bare command runs the fast tier, and every DAG run, the real scheduler
and the browser are in a marked tier of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NIGHT = "tests/psiber/test_faults.py::test_a_night_at_a_50_percent_fault_rate_on_the_result_reads_converges"
REAL_SCHOOL_REPORT = "tests/sync_common/test_report_pages.py::test_a_real_school_runs_report_and_csv"


def collected(*args: str) -> list[str]:
    """Node ids pytest would run with ``args`` (run from the project, as scripts/test.sh does)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if "::" in line]


SLOW_MODULES = (*sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*end_to_end.py")),
                "tests/sync_common/test_failed_run_report.py", "tests/test_demo_cli.py",
                "tests/test_real_scheduler.py", "tests/sync_common/test_report_in_browser.py")


def test_the_bare_command_runs_no_dag_no_scheduler_and_no_browser():
    fast = collected()
    assert fast and not [test for test in fast if test.startswith(SLOW_MODULES + (NIGHT, REAL_SCHOOL_REPORT))]
    assert any(test.startswith("tests/psiber/test_faults.py::test_a_retried_read") for test in fast)


def test_a_dag_run_is_in_the_e2e_tier_by_its_module_or_by_the_fixture_that_runs_it():
    slow = collected("-m", "e2e or scheduler or browser", "tests/psiber/test_faults.py", "tests/sync_common",
                     *SLOW_MODULES)
    assert {test.split("::")[0] for test in slow} == {*SLOW_MODULES, "tests/psiber/test_faults.py",
                                                      "tests/sync_common/test_report_pages.py"}
    by_fixture = [test for test in slow if not test.startswith(SLOW_MODULES)]  # in modules of the fast tier
    assert by_fixture and all(test.startswith((NIGHT, REAL_SCHOOL_REPORT)) for test in by_fixture)

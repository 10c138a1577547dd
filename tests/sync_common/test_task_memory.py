"""A task process's pyarrow allocates from the C library (what pyarrow's default pool once held it keeps), unless
whoever runs the worker chose a pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def backend_after(code: str, **env: str) -> str:
    """The pyarrow pool a fresh interpreter ends with after ``code`` (the step decorator's wrapping, or the
    function alone)."""
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "plugins" / "moodle")])
    script = code + "\nimport pyarrow as pa\nprint(pa.default_memory_pool().backend_name)\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env=environment, timeout=120)
    return result.stdout.strip().splitlines()[-1]


def test_the_default_pool_is_not_the_system_one_without_it():
    assert backend_after("import pyarrow") != "system"  # else the tests below prove nothing


@pytest.mark.parametrize("imported_first", [False, True], ids=["before pyarrow is imported", "after"])
def test_a_step_makes_pyarrow_allocate_from_the_system(imported_first):
    code = ("import pyarrow\n" if imported_first else "") + (
        "from sync_common.dag_builder import step\n"
        "def read_extract():\n    return 1\n"
        "step(read_extract).function()\n")
    assert backend_after(code) == "system"


def test_a_pool_chosen_for_the_worker_is_kept():
    code = "from sync_common.task_memory import allocate_arrow_from_the_system\nallocate_arrow_from_the_system()\n"
    assert backend_after(code, ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "jemalloc"

"""scripts/create_pools.py against a real Airflow metadata database: the pools the integration files name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_FILE = ROOT / "include" / "integrations" / "demo.yaml"


def create_pools(*folder: Path) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "PSIBER_MOODLE_INTEGRATIONS"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "create_pools.py"), *map(str, folder)],
                          env=environment, check=True, capture_output=True, text=True, timeout=120).stdout


def slots(pool: str) -> int | None:
    from airflow.models.pool import Pool

    found = Pool.get_pool(pool)
    return found.slots if found else None


def test_the_shipped_demo_integration_gets_its_pool_with_a_slot_per_parallel_read(airflow_db):
    results = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))["results"]
    pool = results.get("moodle_pool")
    assert pool, "the demo integration names no pool: the scheduler's runs would read Moodle unbounded across runs"

    printed = create_pools()

    assert f"pool {pool}: {results['max_parallel_reads']} slots" in printed
    assert slots(pool) == results["max_parallel_reads"]


def test_integrations_sharing_a_pool_get_their_largest_parallel_reads_and_a_change_resizes_it(airflow_db, tmp_path):
    settings = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))

    def write(name: str, parallel_reads: int) -> None:
        settings["results"] = {"max_parallel_reads": parallel_reads, "moodle_pool": "moodle_shared_site"}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**settings, "name": name}), encoding="utf-8")

    write("Forklifts", 3)
    write("First Aid", 6)
    create_pools(tmp_path)
    assert slots("moodle_shared_site") == 6

    write("First Aid", 2)
    create_pools(tmp_path)
    assert slots("moodle_shared_site") == 3

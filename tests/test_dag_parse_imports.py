"""What the DAG processor pays to parse each DAG file: no pandas, GX, NumPy, pyarrow, database driver or HTTP
client at the top level of a DAG file or of what it imports (Airflow's best practices: the processor parses every
file again and again; the steps import what they need inside their task bodies, when a task runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
# Top packages (and the modules under them) a DAG file may not bring in at parse time: the data stack, the database
# drivers, and the Moodle client's HTTP stack (requests, aiohttp, the HTTP provider's hook).
HEAVY = ("pandas", "numpy", "pyarrow", "great_expectations", "scipy", "psycopg2", "asyncpg", "requests", "aiohttp",
         "airflow.providers.http")
# SQLAlchemy's core is loaded by Airflow itself; what a DAG file may not add is any more of it (a dialect, the ORM
# extensions), so the check is on what appears beyond Airflow's own import.
SQLALCHEMY = "sqlalchemy"
PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dags), "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "new": sorted(set(sys.modules) - before)}))
"""


def parsed(dag_file: Path) -> dict:
    """The file parsed by a DagBag of its own in a fresh interpreter, as the DAG processor parses it."""
    path = os.pathsep.join(str(ROOT / folder) for folder in ("plugins", "plugins/moodle", "dags"))
    result = subprocess.run([sys.executable, "-c", PARSE, str(dag_file)], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": path}, cwd=ROOT, timeout=300)
    return json.loads(result.stdout.strip().splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules
            if name.startswith(SQLALCHEMY + ".") or any(name == top or name.startswith(top + ".") for top in HEAVY)]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[path.name for path in DAG_FILES])
def test_parsing_a_dag_file_imports_nothing_heavy(dag_file):
    bag = parsed(dag_file)
    assert bag["dags"] and not bag["errors"], bag["errors"]
    assert not heavy(bag["new"]), f"parsing {dag_file.name} imports {heavy(bag['new'])[:10]}"


def test_the_check_sees_a_heavy_import(tmp_path):
    """A DAG file importing pandas at its top fails the check above."""
    dag_file = tmp_path / "heavy_dag.py"
    dag_file.write_text("import pandas\nfrom airflow.sdk import DAG\n\ndag = DAG(dag_id='heavy', schedule=None)\n",
                        encoding="utf-8")
    bag = parsed(dag_file)
    assert bag["dags"] == ["heavy"]
    assert {"pandas", "numpy"} <= set(heavy(bag["new"]))

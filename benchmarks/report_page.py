"""How long the sync report takes for a run of 10,000 record outcomes: writing it, the page, the CSV.

A run's report with 10,000 outcomes (500 of them problems) is written as summarize_run writes it,
then the report pages are asked for as the Airflow UI asks for them (the plugin's FastAPI app,
in-process; Airflow's own access check is left out, it costs the same for any report):
the run's first page (problems first, 100 rows), a search by employee number, the CSV of all
records, and the runs list. On SQLite and, when reachable, on PostgreSQL.

    .venv/bin/python benchmarks/report_page.py [--outcomes 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("PSIBER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
RUN_ID = "scheduled__2026-11-23T00:00:00+00:00"
DAG_ID = "psiber_moodle_benchmark"


def outcomes(count: int) -> list[dict]:
    problems = ("invalid", "conflict", "failed", "warning")
    rows = []
    for n in range(count):
        number = f"EE{n:06d}"
        if n % 20 == 0:
            rows.append({"record": number, "action": problems[n // 20 % 4], "flow": "users", "owner": "PSIber HR",
                         "reason": "e-mail address is malformed (Moodle would refuse it)"})
        elif n % 7 == 0:
            rows.append({"record": number, "action": "updated", "flow": "users", "owner": "",
                         "reason": "changed: lastname, email"})
        else:
            rows.append({"record": number, "action": "unchanged", "flow": "users", "owner": "", "reason": ""})
    return rows


def summary(count: int) -> dict:
    records = outcomes(count)
    counts: dict[str, int] = {}
    for row in records:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    return {"run_id": RUN_ID, "started_at": "2026-11-23T00:00:05+00:00", "finished_at": "2026-11-23T00:09:30+00:00",
            "complete": True, "moodle_calls": 1234, "counts": {"users": counts},
            "tasks": [{"task_id": f"task_{n}", "map_index": -1, "state": "success", "duration": 1.0}
                      for n in range(20)], "outcomes": records}


def timed(action, repeat: int) -> float:
    """Median seconds of ``repeat`` calls (after one warm-up call)."""
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(backend: str, connection: dict, engine, count: int, repeat: int) -> None:
    from fastapi.testclient import TestClient
    from moodle_sync_report import app

    from sync_common import report_pages
    from sync_common.report_store import save_run_report

    os.environ["AIRFLOW_CONN_BENCH_PSIBER"] = json.dumps(connection)
    report = summary(count)
    started = time.perf_counter()
    save_run_report(engine, "benchmark", DAG_ID, report, keep_days=400)
    written = time.perf_counter() - started
    app.dependency_overrides[report_pages.can_read_runs.dependency] = lambda: None
    client = TestClient(app)
    base = f"/dags/{DAG_ID}/runs/{RUN_ID.replace('+', '%2B')}"

    def page(path: str):
        def ask():
            answer = client.get(path)
            assert answer.status_code == 200, answer.text[:200]
            ask.size = len(answer.content)
        return ask

    print(f"\n{backend}: a run of {count:,} outcomes ({sum(o['action'] != 'unchanged' for o in report['outcomes']):,}"
          " not unchanged)")
    print(f"  summarize_run writes the report:          {written:7.3f} s")
    for label, path in (("report page (first 100 rows)", base), ("search by employee number", f"{base}?q=EE000042"),
                        ("problems only (action=invalid)", f"{base}?action=invalid"),
                        ("CSV of every record", f"{base}/outcomes.csv"), ("runs list", f"/dags/{DAG_ID}/runs")):
        ask = page(path)
        seconds = timed(ask, repeat)
        print(f"  {label:40} {seconds:7.3f} s  ({ask.size / 1024:,.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outcomes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="psiber-report-bench-"))
    (folder / "benchmark.yaml").write_text(
        "name: Benchmark\nmoodle_conn_id: bench_moodle\npsiber_conn_id: bench_psiber\npass_result: Competent\n"
        "fail_result: Not Yet Competent\npseudo_email_domain: jhb.com\n")
    os.environ.update({"PSIBER_MOODLE_INTEGRATIONS": str(folder), "AIRFLOW_HOME": str(folder),
                       "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    sys.path[:0] = [str(ROOT / "plugins")]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    measure("SQLite", {"conn_type": "sqlite", "host": str(folder / "psiber.db")},
            create_engine(f"sqlite:///{folder / 'psiber.db'}"), args.outcomes, args.repeat)
    server = make_url(POSTGRES_URL)
    name = f"psiber_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - the benchmark says why PostgreSQL is left out
        print(f"\nPostgreSQL not measured: {error.__class__.__name__} at {server.host}:{server.port}")
        return
    engine = create_engine(server.set(database=name))
    try:
        measure("PostgreSQL", {"conn_type": "postgres", "host": server.host, "port": server.port,
                               "login": server.username, "password": server.password, "schema": name},
                engine, args.outcomes, args.repeat)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

"""How long the sync report takes for a 10,000-employee first night: writing it, the page, the CSV.

A first night's report (every employee created, 1 in 20 a problem, each with a name beside the employee
number) is written as summarize_run writes it, then the report pages are asked for as the Airflow UI
asks for them (the plugin's FastAPI app, in-process; Airflow's own access check is left out, it costs
the same for any report): the run's first page (problems first, 100 rows), filtered pages, the CSV of
all records, and the runs list. On SQLite and, when reachable, on PostgreSQL.

    .venv/bin/python benchmarks/report_page.py [--outcomes 10000] [--repeat 5]

For a browser: ``--into .demo/airflow-ui/psiber.db`` writes the same report into the demo's report
database (the demo's driver_training integration) instead, and prints the address that opens it inside
Airflow's frame (scripts/demo_airflow.sh running; log in first).

    .venv/bin/python benchmarks/report_page.py --into .demo/airflow-ui/psiber.db
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("PSIBER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
RUN_ID = "scheduled__2026-11-23T00:00:00+00:00"
DAG_ID = "psiber_moodle_benchmark"
DEMO_KEY, DEMO_DAG_ID = "driver_training", "psiber_moodle_driver_training"  # scripts/demo_airflow.py's integration
FIRST_NAMES = ("Thandi", "Sipho", "Naledi", "Johan", "Priya", "Lerato", "Pieter", "Ayanda")
SURNAMES = ("Nkosi", "Dlamini", "van Wyk", "Naidoo", "Botha", "Mokoena", "Pillay")


def outcomes(count: int) -> list[dict]:
    """A first night: every employee created, but 1 in 20 with a problem for its owner."""
    problems = (("invalid", "PSIber HR", "e-mail address is malformed (Moodle would refuse it)"),
                ("conflict", "Moodle administrator / PSIber HR", "e-mail already used by Moodle user #7"),
                ("failed", "Moodle administrator", "Moodle refused it: invalid parameter value"),
                ("warning", "PSIber HR", "no payroll element matches the job title"))
    rows = []
    for n in range(count):
        number = f"EE{n:06d}"
        if n % 20 == 0:
            action, owner, reason = problems[n // 20 % 4]
            rows.append({"record": number, "action": action, "flow": "users", "owner": owner, "reason": reason})
        else:
            rows.append({"record": number, "action": "created", "flow": "users", "owner": "", "reason": ""})
    return rows


def names(count: int) -> dict[str, str]:
    return {f"ee{n:06d}": f"{FIRST_NAMES[n % 8]} {SURNAMES[n // 8 % 7]}" for n in range(count)}


def summary(count: int, started: datetime = datetime(2026, 11, 23, 0, 0, 5, tzinfo=UTC)) -> dict:
    records = outcomes(count)
    counts: dict[str, int] = {}
    for row in records:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    return {"run_id": RUN_ID, "started_at": started.isoformat(),
            "finished_at": (started + timedelta(minutes=9, seconds=25)).isoformat(),
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
    save_run_report(engine, "benchmark", DAG_ID, report, keep_days=400, names=names(count))
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

    print(f"\n{backend}: a first night of {count:,} employees "
          f"({sum(o['action'] != 'created' for o in report['outcomes']):,} problems)")
    print(f"  summarize_run writes the report:          {written:7.3f} s")
    for label, path in (("report page (first 100 rows)", base), ("page 50", f"{base}?page=50"),
                        ("search by employee number", f"{base}?q=EE000042"),
                        ("search by surname (name column)", f"{base}?q=naidoo"),
                        ("filtered: owner PSIber HR", f"{base}?owner=PSIber+HR"),
                        ("filtered: action=invalid, page 2", f"{base}?action=invalid&page=2"),
                        ("CSV of every record", f"{base}/outcomes.csv"),
                        ("CSV filtered (owner PSIber HR)", f"{base}/outcomes.csv?owner=PSIber+HR"),
                        ("runs list", f"/dags/{DAG_ID}/runs")):
        ask = page(path)
        seconds = timed(ask, repeat)
        print(f"  {label:40} {seconds:7.3f} s  ({ask.size / 1024:,.0f} KiB)")


def into_demo(database: Path, count: int, airflow_url: str = "http://localhost:8080") -> str:
    """Write the first night's report, started now, into a demo's report database (scripts/demo_airflow.py's
    ``psiber.db``); returns the address that opens it inside Airflow's frame (a browser test can call this)."""
    from sqlalchemy import create_engine

    from sync_common.report_pages import NAV_ROUTE, URL_PREFIX
    from sync_common.report_store import save_run_report

    if not database.exists():
        raise SystemExit(f"{database} does not exist: start scripts/demo_airflow.sh once first")
    engine = create_engine(f"sqlite:///{database}")
    save_run_report(engine, DEMO_KEY, DEMO_DAG_ID, summary(count, datetime.now(UTC)), keep_days=400,
                    names=names(count))
    engine.dispose()
    return f"{airflow_url}/plugin/{NAV_ROUTE}{URL_PREFIX}/dags/{DEMO_DAG_ID}/runs/{RUN_ID}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outcomes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--into", type=Path, help="a demo's SQLite report database to write the report into, "
                        "unmeasured (e.g. .demo/airflow-ui/psiber.db)")
    args = parser.parse_args()
    if args.into:
        sys.path[:0] = [str(ROOT / "plugins")]
        address = into_demo(args.into, args.outcomes)
        print(f"A first night of {args.outcomes:,} employees is in {args.into} (run {RUN_ID}, the DAG's 'Sync runs' "
              f"tab lists it). With the demo running and logged in, open\n  {address}")
        return
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

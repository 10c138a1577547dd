"""What a nightly run costs: Moodle calls against the naive count, and per task wall time, CPU and peak RSS.

A company of E employees (all linked to Moodle users) × C courses, each employee enrolled in N courses
(80% of them completed, with a grade). The demo integration's DAG runs with dag.test() against SQLite
and the Moodle stand-in, which serves from a process of its own (its CPU is not the DAG's):

1. initial users: the first run creates the users and copies the courses;
2. initial results: the learners' enrolments, grades and completions are read in full;
3. night, nothing changed;
4. night with 1% HR changes (renames, new e-mails, leavers) and 5% of the learners active.

Per task it prints wall time, CPU and peak RSS as each task would run on a worker (the process's peak
resident memory during the task, reset before it: an upper bound, since this one process also holds
what earlier tasks left), and the wall time projected for a live Moodle 4.5 site from the per-call
latencies recorded on one (../shared/moodle-contract/README.md), with the mapped reads spread over the
integration's ``max_parallel_reads``: each task's own CPU plus its calls' recorded latency (calls a task
makes from several threads at once overlapping).

    .venv/bin/python benchmarks/nightly_run.py                  # a quick look: 1,000 × 50 × 6
    .venv/bin/python benchmarks/nightly_run.py --employees 10000 --courses 300 --enrolments 6

``--state-dir DIR`` keeps the state after the initial load (PSIber's and Airflow's databases, the run data
and the stand-in's site) in DIR, and a later run with the same DIR starts from a copy of it and measures only
the two nights, so repeated measurements skip the initial load's minutes. The size options of that later
run are ignored: the saved state's are used (DIR/loaded.json says which). Delete DIR to load afresh.
``--profile DIR`` writes a cProfile of each task's CPU (run id, task id, map index) into DIR; ``--profile-dag-test
DIR`` one of each phase's whole dag.test() call instead (Airflow's own work around the tasks too: scheduling, task
instance states, XComs). The CPU figures then include the profiler's own cost.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400
COMPLETED_SHARE = 0.8
COVERED_SHARE = 0.8  # the demo integration covers 8 of the demo company's 10 payrolls

# Median milliseconds per call on a live Moodle 4.5.6 site (../shared/moodle-contract/README.md, "Latency"):
# (items in the call, ms) points, interpolated linearly and extended past the last point.
LIVE_MS: dict[str, list[tuple[int, float]]] = {
    "core_webservice_get_site_info": [(1, 28)],
    "core_user_get_users_by_field": [(1, 69), (100, 461), (1000, 6896)],
    "core_user_create_users": [(1, 77), (10, 275), (100, 1371)],
    "core_user_update_users": [(1, 21), (100, 145)],
    "core_user_get_users": [(1, 29)],
    "core_course_get_courses": [(1, 39)],
    "core_course_get_categories": [(1, 19)],
    "core_enrol_get_users_courses": [(1, 26)],
    "core_enrol_get_enrolled_users": [(1, 79)],
    "gradereport_user_get_grade_items": [(1, 39)],
    "core_completion_get_course_completion_status": [(1, 28)],
    "auth_email_get_signup_settings": [(1, 30)],
}
UNKNOWN_MS = 100.0


def live_ms(function: str, items: int) -> float:
    points = LIVE_MS.get(function)
    if not points:
        return UNKNOWN_MS
    if len(points) == 1 or items <= points[0][0]:
        return points[0][1]
    at = min(bisect_left([n for n, _ in points], items), len(points) - 1)
    (n0, ms0), (n1, ms1) = points[at - 1], points[at]
    return ms0 + (ms1 - ms0) * (items - n0) / (n1 - n0)


class Site:
    """The Moodle stand-in, living in the stand-in's process; the benchmark drives it through a proxy."""

    def __init__(self, token: str, state: str | None = None):
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        from moodle_stand_in import MoodleStandIn

        self.moodle = MoodleStandIn(token, state_path=Path(state) if state else None)
        self.moodle.state_path = None  # loaded once: the site's writes are not saved one by one
        self.moodle.start()
        self.rng = random.Random(1)

    def save(self, state: str) -> None:
        self.moodle.state_path = Path(state)
        self.moodle._save()
        self.moodle.state_path = None

    def base_url(self) -> str:
        return self.moodle.base_url

    def add_courses(self, count: int, started: int) -> list[int]:
        category = self.moodle.add_category("Driver Training")["id"]
        return [self.moodle.add_course(f"C{n:03d}", categoryid=category, idnumber=f"C{n:03d}", startdate=started,
                                       customfields={"passrate": "60"})["id"] for n in range(count)]

    def learners(self) -> list[int]:
        return [user["id"] for user in self.moodle.users.values() if user.get("idnumber")]

    def study(self, course_ids: list[int], per_learner: int, when: int) -> int:
        """Every learner enrolled in ``per_learner`` courses, most of them completed with a grade."""
        enrolments = 0
        for user_id in self.learners():
            for course_id in self.rng.sample(course_ids, per_learner):
                self.moodle.enrol(user_id, course_id)
                enrolments += 1
                if self.rng.random() < COMPLETED_SHARE:
                    self.moodle.set_grade(course_id, user_id, float(self.rng.randint(30, 100)), dategraded=when)
                    self.moodle.complete(course_id, user_id, timecompleted=when)
            self.moodle.touch(user_id, when)
        return enrolments

    def be_active(self, course_ids: list[int], share: float, when: int) -> int:
        """A share of the learners study today: a new course, graded and completed."""
        active = self.rng.sample(self.learners(), round(len(self.learners()) * share))
        for user_id in active:
            course_id = self.rng.choice(course_ids)
            self.moodle.enrol(user_id, course_id)
            self.moodle.set_grade(course_id, user_id, float(self.rng.randint(30, 100)), dategraded=when)
            self.moodle.complete(course_id, user_id, timecompleted=when)
            self.moodle.touch(user_id, when)
        return len(active)

    def call_count(self) -> int:
        return len(self.moodle.calls)

    def calls_since(self, start: int) -> list[tuple[str, int]]:
        """(function, items in the call: the longest list sent) of each call since ``start``."""
        return [(name, max((len(v) for v in params.values() if isinstance(v, list | dict)), default=1))
                for name, params in self.moodle.calls[start:]]

    def stop(self) -> None:
        self.moodle.stop()


class SiteProcess(BaseManager):
    pass


SiteProcess.register("Site", Site)


@dataclass
class TaskFigures:
    task_id: str
    map_index: int
    wall: float
    cpu: float
    rss_before: int
    peak_rss: int
    calls: list[tuple[str, int]] = field(default_factory=list)  # (function, items) as Moodle received them
    asked: list[tuple[int, str, int]] = field(default_factory=list)  # (thread, function, items) as tasks asked

    @property
    def growth(self) -> int:
        return max(self.peak_rss - self.rss_before, 0)

    @property
    def live_seconds(self) -> float:
        """The task's own CPU, plus the recorded latency of its calls: those a task asks in parallel (its
        threads) overlap, so its longest thread counts."""
        waits: dict[int, float] = defaultdict(float)
        for thread, name, items in self.asked:
            waits[thread] += live_ms(name, items) / 1000
        return self.cpu + max(waits.values(), default=0.0)


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident set size starts again from now


def memory_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure_tasks(site, figures: list[TaskFigures], profiles: Path | None = None) -> None:
    """Wrap the task runner's execute step: each task's wall time, CPU, peak RSS and Moodle calls; with
    ``profiles``, each task's cProfile (its own thread) in a file of that folder."""
    from airflow.sdk.execution_time import task_runner

    from moodle_provider.hooks.moodle import MoodleHook

    execute, call = task_runner._execute_task, MoodleHook.call
    asked: list[tuple[int, str, int]] = []

    def recorded(hook, wsfunction, **params):
        asked.append((threading.get_ident(), wsfunction,
                      max((len(v) for v in params.values() if isinstance(v, list | dict)), default=1)))
        return call(hook, wsfunction, **params)

    def measured(context, ti, log):
        asked.clear()
        calls_before, rss_before = site.call_count(), memory_kib("VmRSS")
        peak_rss_reset()
        wall, cpu = time.perf_counter(), time.process_time()
        profile = cProfile.Profile(time.process_time) if profiles else None  # CPU, not the waits on Moodle
        try:
            return profile.runcall(execute, context, ti, log) if profile else execute(context, ti, log)
        finally:
            if profile:
                profiles.mkdir(parents=True, exist_ok=True)
                profile.dump_stats(profiles / f"{ti.run_id[-32:]}-{ti.task_id}-{ti.map_index}.prof".replace(":", "_"))
            figures.append(TaskFigures(ti.task_id, ti.map_index, time.perf_counter() - wall,
                                       time.process_time() - cpu, rss_before, memory_kib("VmHWM"),
                                       site.calls_since(calls_before), list(asked)))

    task_runner._execute_task = measured
    MoodleHook.call = recorded


def use_task_libraries() -> None:
    """Use what tasks use before their data, as a worker's task process would: GX imported, Arrow's memory
    pool made by a first Parquet read."""
    import io

    import great_expectations  # noqa: F401
    import pandas

    buffer = io.BytesIO()
    pandas.DataFrame({"n": range(1000)}).to_parquet(buffer)
    buffer.seek(0)
    pandas.read_parquet(buffer)


def fresh_task_process_mib() -> float:
    """Peak RSS of a process holding what a worker's task process may load before its data: Airflow's task
    runner, the Celery executor, the parsed DAG file and the libraries tasks use (GX imported, Arrow's memory
    pool made by a first Parquet read). This process has used them too before it measures (``use_task_libraries``),
    so a task's growth never counts them a second time: the figure on a worker is exact for a task that
    validates and reads Parquet, and an upper bound for one that does not (GX alone is some 120 MiB)."""
    probe = ("import resource, sys, airflow.sdk.execution_time.task_runner, airflow.providers.celery.executors"
             f".celery_executor; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import nightly_run; "
             "nightly_run.use_task_libraries(); from airflow.dag_processing.dagbag import DagBag; "
             f"DagBag(dag_folder={str(ROOT / 'dags' / 'psiber_moodle_sync.py')!r}); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    answer = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=os.environ)
    return int(answer.stdout.split()[-1]) / 1024


def spread(seconds: list[float], slots: int) -> float:
    """Wall time of tasks run ``slots`` at a time, each taken by the first free slot."""
    ends = [0.0] * slots
    for duration in seconds:
        ends[ends.index(min(ends))] += duration
    return max(ends)


def report(label: str, state: str, wall: float, cpu: float, figures: list[TaskFigures], naive: int,
           parallel_reads: int, fresh_mib: float) -> dict:
    calls = Counter(name for task in figures for name, _ in task.calls)
    total = sum(calls.values())
    print(f"\n== {label}: {state}; {total:,} Moodle calls (naive: {naive:,}, {total / naive:.2%} of it); "
          f"wall {wall:.1f} s; DAG-side CPU {cpu:.1f} s (dag.test process, the stand-in's own CPU excluded)")
    for name, number in sorted(calls.items()):
        print(f"    {number:8,d}  {name}")
    groups: dict[str, list[TaskFigures]] = defaultdict(list)
    for task in figures:
        groups[task.task_id].append(task)
    print(f"    {'task':32} {'tries':>5} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'(RSS before)':>12} "
          f"{'growth':>7} {'on a worker':>11} {'calls':>7} {'live s':>8}")
    live = 0.0
    for task_id, tasks in groups.items():
        mapped = len(tasks) > 1 or tasks[0].map_index >= 0
        task_live = spread([t.live_seconds for t in tasks], parallel_reads) if mapped else tasks[0].live_seconds
        live += task_live
        print(f"    {task_id:32} {len(tasks):5d} {sum(t.wall for t in tasks):8.1f} {sum(t.cpu for t in tasks):8.1f} "
              f"{max(t.peak_rss for t in tasks) / 1024:13.0f} {max(t.rss_before for t in tasks) / 1024:12.0f} "
              f"{max(t.growth for t in tasks) / 1024:7.0f} {fresh_mib + max(t.growth for t in tasks) / 1024:11.0f} "
              f"{sum(len(t.calls) for t in tasks):7,d} {task_live:8.1f}")
    peak = max(t.peak_rss for t in figures) / 1024
    worker = fresh_mib + max(t.growth for t in figures) / 1024
    print(f"    largest task: peak RSS {peak:.0f} MiB in this process, {worker:.0f} MiB on a worker (a fresh task "
          f"process, {fresh_mib:.0f} MiB, plus the task's growth); tasks' CPU {sum(t.cpu for t in figures):.1f} s; "
          f"projected live-site wall {live / 60:.1f} min ({parallel_reads} parallel reads; other tasks one after "
          "another)")
    return {"phase": label, "state": state, "calls": total, "naive": naive, "wall_s": round(wall, 1),
            "dag_cpu_s": round(cpu, 1), "tasks_cpu_s": round(sum(t.cpu for t in figures), 1),
            "peak_task_rss_mib": round(peak), "peak_task_rss_on_worker_mib": round(worker),
            "live_min": round(live / 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=1000, help="employees the integration covers")
    parser.add_argument("--courses", type=int, default=50)
    parser.add_argument("--enrolments", type=int, default=6, help="courses per employee")
    parser.add_argument("--hr-changes", type=float, default=0.01, help="share of employees changed in HR")
    parser.add_argument("--active", type=float, default=0.05, help="share of learners active on the last night")
    parser.add_argument("--json", type=Path, help="also write the phases' figures to this file")
    profiles = parser.add_mutually_exclusive_group()  # one profiler at a time in a thread
    profiles.add_argument("--profile", type=Path, help="write each task's cProfile into this folder (slower)")
    profiles.add_argument("--profile-dag-test", type=Path,
                          help="write each phase's cProfile of the whole dag.test() into this folder (slower)")
    parser.add_argument("--state-dir", type=Path,
                        help="keep the state after the initial load here, or start from it if it is there")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="psiber-moodle-bench-"))
    saved = args.state_dir / "loaded.json" if args.state_dir else None
    loaded = json.loads(saved.read_text()) if saved and saved.exists() else None
    if loaded:
        shutil.copytree(args.state_dir / "home", home, dirs_exist_ok=True)
        args.employees, args.courses, args.enrolments = loaded["employees"], loaded["courses"], loaded["enrolments"]
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "MOODLE_SYNC_TASK_RETRIES": "0",
        "MOODLE_SYNC_DATA_DIR": str(home / "runs"),
        "PSIBER_MOODLE_INTEGRATIONS": str(ROOT / "include" / "integrations"),
    })
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)

    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import create_engine, text

    from psiber.config import load_integration
    from psiber.demo_company import seed_demo_company

    integration = load_integration(ROOT / "include" / "integrations" / "demo.yaml")
    parallel_reads = integration.results.max_parallel_reads
    engine = create_engine(f"sqlite:///{home / 'psiber.db'}")
    if not loaded:
        seed_demo_company(engine, employees=round(args.employees / COVERED_SHARE))
        with engine.begin() as connection:
            connection.execute(text("UPDATE employee SET employment_status = 'Active'"))
    token = secrets.token_hex(16)
    site_process = SiteProcess(ctx=multiprocessing.get_context("spawn"))
    site_process.start()
    site = site_process.Site(token, str(args.state_dir / "site.json") if loaded else None)
    os.environ.update({
        "AIRFLOW_CONN_MOODLE_DEMO": json.dumps({"conn_type": "http", "host": site.base_url(), "password": token}),
        "AIRFLOW_CONN_PSIBER_DEMO": json.dumps({"conn_type": "sqlite", "host": str(home / "psiber.db")}),
        "AIRFLOW_CONN_MOODLE_DEMO_INITIAL_PASSWORD": json.dumps({"conn_type": "generic",
                                                                 "password": "Bench-Pa55word!"}),
    })
    now = int(time.time())
    course_ids = loaded["course_ids"] if loaded else site.add_courses(args.courses, now - 90 * DAY)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[f"psiber_moodle_{integration.key}"]
    figures: list[TaskFigures] = []
    measure_tasks(site, figures, args.profile)
    fresh_mib = fresh_task_process_mib()
    phases = []

    def run(label: str, naive: int, **conf) -> None:
        figures.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        if args.profile_dag_test:
            profile = cProfile.Profile(time.process_time)
            dag_run = profile.runcall(dag.test, run_conf=conf or None)
            args.profile_dag_test.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(args.profile_dag_test / f"{label.replace(' ', '_').replace(',', '')}.prof")
        else:
            dag_run = dag.test(run_conf=conf or None)
        phases.append(report(label, str(dag_run.state), time.perf_counter() - wall, time.process_time() - cpu,
                             figures, naive, parallel_reads, fresh_mib))

    try:
        use_task_libraries()  # as the baseline holds them
        if loaded:  # the process as the initial load left it: Airflow's in-process API built
            from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

            InProcessExecutionAPI().app  # noqa: B018  (its imports, some 3 s of CPU, are made once a process)

            naive = loaded["naive"]
            print(f"\nStarting from the state loaded in {args.state_dir} ({args.employees:,} × {args.courses} × "
                  f"{args.enrolments}); naive night: {naive:,} calls")
        else:
            run("initial users", args.employees)
            learners = site.learners()
            enrolments = site.study(course_ids, args.enrolments, now - 3 * DAY)
            naive = len(learners) + enrolments  # one call per employee and one per enrolment
            print(f"\n{len(learners):,} learners linked, {enrolments:,} enrolments "
                  f"({COMPLETED_SHARE:.0%} completed); naive night: {naive:,} calls")
            run("initial results", naive, full_results_sync=True)
            if args.state_dir:
                save_state(args.state_dir, home, site, {
                    "employees": args.employees, "courses": args.courses, "enrolments": args.enrolments,
                    "course_ids": course_ids, "naive": naive})
        run("night, nothing changed", naive, full_results_sync=False)  # dag.test() keeps the last run's params
        changed = change_hr_records(engine, list(integration.payrolls), args.hr_changes)
        active = site.be_active(course_ids, args.active, int(time.time()) - 600)
        run(f"night, {changed} HR changes, {active} learners active", naive + active, full_results_sync=False)
    finally:
        site.stop()
        site_process.shutdown()
    if args.json:
        args.json.write_text(json.dumps(phases, indent=1))


def save_state(state_dir: Path, home: Path, site, loaded: dict) -> None:
    """The state after the initial load, for later runs to start from (loaded.json last: it marks it whole)."""
    shutil.rmtree(state_dir, ignore_errors=True)
    shutil.copytree(home, state_dir / "home")
    site.save(str(state_dir / "site.json"))
    (state_dir / "loaded.json").write_text(json.dumps(loaded))


def change_hr_records(engine, payrolls: list[str], share: float) -> int:
    """HR's day among the integration's employees: half of those changed renamed, a quarter with a new
    e-mail, a quarter leaving."""
    from sqlalchemy import bindparam, text

    with engine.begin() as connection:
        covered = text("SELECT employee_id FROM employee WHERE email LIKE '%@%' AND payroll_code IN :payrolls "
                       "ORDER BY employee_id").bindparams(bindparam("payrolls", expanding=True))
        ids = list(connection.execute(covered, {"payrolls": payrolls}).scalars())
        chosen = random.Random(2).sample(ids, round(len(ids) * share))
        for n, employee_id in enumerate(chosen):
            if n % 4 in (0, 1):
                change = "surname = surname || 'son'"
            elif n % 4 == 2:
                change = "email = 'new.' || email"
            else:
                change = "employment_status = 'Terminated'"
            connection.execute(text(f"UPDATE employee SET {change} WHERE employee_id = :id"), {"id": employee_id})
    return len(chosen)


if __name__ == "__main__":
    main()

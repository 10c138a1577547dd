"""What a nightly run costs: Moodle calls against the naive count, and per task wall time, CPU and peak RSS.

A company of E employees (all linked to Moodle users) × C courses, each employee enrolled in N courses
(80% of them completed, with a grade). The demo integration's DAG runs with dag.test() against SQLite
and the Moodle stand-in, which serves from a process of its own (its CPU is not the DAG's):

1. initial users: the first run creates the users and copies the courses;
2. initial results: the learners' enrolments, grades and completions are read in full;
3. night, nothing changed;
4. night with 1% HR changes (renames, new e-mails, leavers) and 5% of the learners active.

Each task runs in a fresh Python process of its own, as a worker runs it (``--task-processes fresh``, the
default): the process parses the DAG file, runs the one task instance through Airflow's in-process task
runner and ends, so its peak RSS is the task's memory on a worker, with nothing freed by earlier tasks to
hide its growth. ``--task-processes warm`` runs every task in the dag.test() process instead (quicker; the
peak RSS is then an upper bound of what this process held, and the growth a lower bound of the task's).

Per task it prints wall time, CPU, peak RSS and its Moodle calls per function, and per phase the wall time
projected for a live Moodle 4.5 site: each task's own CPU plus its calls' latency, the calls a task makes from
several threads at once overlapping and the mapped reads spread over the integration's ``max_parallel_reads``.
A call's latency depends on its size (``LATENCY``: the learners a course's grade read answers with, the ids
of a look-up, the rows of a Report Builder page), from calls recorded on live sites; the output states the
model and where each figure comes from.

    .venv/bin/python benchmarks/nightly_run.py                  # a quick look: 1,000 × 50 × 6
    .venv/bin/python benchmarks/nightly_run.py --employees 10000 --courses 300 --enrolments 6
    .venv/bin/python benchmarks/nightly_run.py --results-from reports   # completions from Report Builder reports

``--results-from reports`` gives the demo integration the two Report Builder reports of the README's recipe
(``moodle_reports``, made on the stand-in as an administrator would); the default reads per user and course, the
path of sites without them.

``--state-dir DIR`` keeps the state after the initial load (PSIber's and Airflow's databases, the run data
and the stand-in's site) in DIR, and a later run with the same DIR starts from a copy of it and measures only
the two nights, so repeated measurements skip the initial load's minutes (with warm task processes after an
unreported quiet night, where the process's first-use costs land instead of in a measured task). The size
options of that later run are ignored: the saved state's are used (DIR/loaded.json says which). Delete DIR to
load afresh.
``--profile DIR`` writes a cProfile of each task's CPU (run id, task id, map index) into DIR; ``--profile-dag-test
DIR`` one of each phase's whole dag.test() call instead (Airflow's own work around the tasks too: scheduling, task
instance states, XComs; with fresh task processes, without the tasks). The CPU figures then include the
profiler's own cost.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400
COMPLETED_SHARE = 0.8
COVERED_SHARE = 0.8  # the demo integration covers 8 of the demo company's 10 payrolls

_CONTRACT = "../shared/moodle-contract/README.md, Latency (1,150 users, 20 courses)"
_LAB_06 = "../shared/moodle-lab-findings/06-benchmark-projection-quiet-night.json (this scenario at 2,000 × 50 × 6)"
_REPORTS = "../shared/moodle-contract-reportbuilder/README.md, Latency (2,000 users × 40 courses)"


@dataclass(frozen=True)
class Latency:
    """A live Moodle 4.5.6 site's median milliseconds for one web-service function, by the call's size: ``points``
    (size, ms) interpolated linearly and extended past the last point along the last segment."""

    size: str
    points: tuple[tuple[int, float], ...]
    source: str

    def ms(self, size: int) -> float:
        points = self.points
        if len(points) == 1 or size <= points[0][0]:
            return points[0][1]
        at = min(bisect_left([n for n, _ in points], size), len(points) - 1)
        (n0, ms0), (n1, ms1) = points[at - 1], points[at]
        return ms0 + (ms1 - ms0) * (size - n0) / (n1 - n0)

    def describe(self) -> str:
        shape = ", ".join(f"{n:,} → {ms:,.0f} ms" for n, ms in self.points)
        return f"by {self.size}: {shape} ({self.source})" if len(self.points) > 1 else f"{shape} ({self.source})"


LATENCY: dict[str, Latency] = {
    # 36 ms for one learner, 888 ms (the quiet night's median over 50 courses of about 240 learners; one course of
    # 234 took 953 ms), 1,040 ms for 300 learners: some 3.4 ms a learner.
    "gradereport_user_get_grade_items": Latency(
        "learners in the course (the answer's usergrades)", ((1, 36), (240, 888), (300, 1040)),
        f"{_REPORTS}; {_LAB_06}"),
    # 69 ms for one value; 2,098 ms for 200 ids, the quiet night's median of 20 look-ups on the lab site (the
    # Report Builder site answered 200 ids in 631 ms: the model takes the slower).
    "core_user_get_users_by_field": Latency("values looked up", ((1, 69), (200, 2098)), f"{_CONTRACT}; {_LAB_06}"),
    # Report (a), 12,000 enrolments with completion: the page's rows (a report's whole count costs too: a 10-row
    # page of the 2,002-row report took 37 ms, the model takes the larger report's figures).
    "core_reportbuilder_retrieve_report": Latency(
        "rows in the page", ((10, 202), (100, 394), (1000, 915), (5000, 1620), (12000, 3408)), _REPORTS),
    "core_reportbuilder_set_filters": Latency("call", ((1, 36),), _REPORTS),
    "core_reportbuilder_filters_reset": Latency("call", ((1, 36),), f"{_REPORTS} (as set_filters)"),
    "core_completion_get_course_completion_status": Latency("call", ((1, 29),), _REPORTS),
    "core_enrol_get_users_courses": Latency("call (one user, 6 courses)", ((1, 85),), _REPORTS),
    "core_webservice_get_site_info": Latency("call", ((1, 28),), _CONTRACT),
    "core_user_create_users": Latency("users sent", ((1, 77), (10, 275), (100, 1371)), _CONTRACT),
    "core_user_update_users": Latency("users sent", ((1, 21), (100, 145)), _CONTRACT),
    "core_user_get_users": Latency("call", ((1, 29),), _CONTRACT),
    "core_course_get_courses": Latency("call", ((1, 39),), _CONTRACT),
    "core_course_get_categories": Latency("call", ((1, 19),), _CONTRACT),
    "core_enrol_get_enrolled_users": Latency("call", ((1, 79),), _CONTRACT),
    "auth_email_get_signup_settings": Latency("call", ((1, 30),), _CONTRACT),
}
UNKNOWN = Latency("call", ((1, 100),), "no recording: 100 ms assumed")


def live_ms(function: str, size: int) -> float:
    return LATENCY.get(function, UNKNOWN).ms(size)


def call_size(function: str, params: dict, answer: object) -> int:
    """A call's size as ``LATENCY`` counts it: the learners of a course's grade read and the rows of a report page
    from the answer, otherwise the longest list sent (ids looked up, users written), else 1."""
    if function == "gradereport_user_get_grade_items" and isinstance(answer, dict):
        return max(len(answer.get("usergrades") or ()), 1)
    if function == "core_reportbuilder_retrieve_report" and isinstance(answer, dict):
        return max(len((answer.get("data") or {}).get("rows") or ()), 1)
    return max((len(v) for v in params.values() if isinstance(v, list | dict)), default=1)


def latency_model() -> list[str]:
    return [f"{function}: {LATENCY[function].describe()}" for function in sorted(LATENCY)] + [
        f"any other function: {UNKNOWN.describe()}"]


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

    def add_reports(self) -> dict[str, int]:
        """The Report Builder reports of the README's recipe, shared with the token user: ids by setting."""
        from moodle_stand_in.reportbuilder import add_recipe_reports

        return add_recipe_reports(self.moodle)

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
    cpu: float  # the task's own work
    rss_before: int  # KiB, when the task started
    peak_rss: int  # KiB: its fresh process's peak, or (warm) this process's peak during the task
    process_cpu: float = 0.0  # its whole process (start, DAG file parsed, task), with fresh task processes
    calls: list[tuple[str, int]] = field(default_factory=list)  # (function, items) as Moodle received them
    asked: list[tuple[int, str, int]] = field(default_factory=list)  # (thread, function, size) as tasks asked

    @property
    def growth(self) -> int:
        return max(self.peak_rss - self.rss_before, 0)

    @property
    def live_seconds(self) -> float:
        """The task's own CPU, plus the live latency of its calls by their size: those a task asks in parallel
        (its threads) overlap, so its longest thread counts."""
        waits: dict[int, float] = defaultdict(float)
        for thread, name, size in self.asked:
            waits[thread] += live_ms(name, size) / 1000
        return self.cpu + max(waits.values(), default=0.0)


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident set size starts again from now


def memory_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure_tasks(site, figures: list[TaskFigures], profiles: Path | None = None, reset_peak: bool = True) -> None:
    """Wrap the task runner's execute step: each task's wall time, CPU, peak RSS and Moodle calls (with
    ``site``, as Moodle received them; the calls asked, with their size, always); with ``profiles``, each task's
    cProfile (its own thread) in a file of that folder. ``reset_peak``: the task runs in a process that ran other
    tasks before (``--task-processes warm``): the peak RSS counts from the task's start, and what the process holds
    is frozen for the task's garbage collections, as in a task process forked from a worker (otherwise a full
    collection goes through every object the earlier tasks left: 0.5 s of `validate_employees` at 20,000)."""
    from airflow.sdk.execution_time import task_runner

    from moodle_provider.hooks.moodle import MoodleHook

    execute, call = task_runner._execute_task, MoodleHook.call
    asked: list[tuple[int, str, int]] = []

    def recorded(hook, wsfunction, **params):
        answer = call(hook, wsfunction, **params)
        asked.append((threading.get_ident(), wsfunction, call_size(wsfunction, params, answer)))
        return answer

    def measured(context, ti, log):
        asked.clear()
        calls_before, rss_before = site.call_count() if site else 0, memory_kib("VmRSS")
        if reset_peak:
            peak_rss_reset()
            gc.freeze()
        wall, cpu = time.perf_counter(), time.process_time()
        profile = cProfile.Profile(time.process_time) if profiles else None  # CPU, not the waits on Moodle
        try:
            return profile.runcall(execute, context, ti, log) if profile else execute(context, ti, log)
        finally:
            if reset_peak:
                gc.unfreeze()
            if profile:
                profiles.mkdir(parents=True, exist_ok=True)
                profile.dump_stats(profiles / f"{ti.run_id[-32:]}-{ti.task_id}-{ti.map_index}.prof".replace(":", "_"))
            cpu = time.process_time() - cpu
            figures.append(TaskFigures(ti.task_id, ti.map_index, time.perf_counter() - wall, cpu, rss_before,
                                       memory_kib("VmHWM"), cpu, site.calls_since(calls_before) if site else [],
                                       list(asked)))

    task_runner._execute_task = measured
    MoodleHook.call = recorded


def run_tasks_in_fresh_processes(site, figures: list[TaskFigures], dag_file: str,
                                 profiles: Path | None) -> subprocess.Popen:
    """dag.test() hands each task instance to a task worker (``serve_tasks``), which runs it in a fresh process of
    its own, as a worker does, instead of running it in the dag.test() process; the calls Moodle received
    meanwhile are the task's."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time import supervisor
    from airflow.utils.state import TaskInstanceState

    answers, told = os.pipe()
    worker = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--task-worker", str(told), dag_file],
                              stdin=subprocess.PIPE, text=True, pass_fds=(told,))
    os.close(told)
    replies = os.fdopen(answers)

    def in_fresh_process(ti, task, client=None):
        calls_before = site.call_count()
        with tempfile.TemporaryDirectory(prefix="task-") as folder:
            Path(folder, "order.json").write_text(json.dumps({
                "ti": ti.model_dump(mode="json"), "profiles": str(profiles) if profiles else None}))
            assert worker.stdin is not None
            worker.stdin.write(folder + "\n")
            worker.stdin.flush()
            status = int(replies.readline() or -1)
            answer = Path(folder, "answer.json")
            done = json.loads(answer.read_text()) if status == 0 and answer.exists() else None
        if done:
            figures.append(TaskFigures(**{**done["figures"], "asked": [tuple(a) for a in done["figures"]["asked"]],
                                          "calls": site.calls_since(calls_before)}))
            state = TaskInstanceState(done["state"])
        else:  # the process died (out of memory, killed): the task failed, as on a worker
            print(f"    {ti.task_id}[{ti.map_index}]: its process ended with status {status}", file=sys.stderr)
            state = TaskInstanceState.FAILED
        return SimpleNamespace(ti=SimpleNamespace(state=state, task=task), state=state, msg=None, error=None)

    supervisor.run_task_in_process = in_fresh_process
    return worker


def serve_tasks(told: int, dag_file: str) -> None:
    """A task worker: Airflow's task runner imported and the DAG file parsed once, as a Celery worker's process has
    them; for each order (a folder) read from stdin, a process forked from it runs the one task instance
    (``run_one_task``), and its exit status is told on the file descriptor ``told``. Nothing a task does stays in
    this process, so no task finds memory an earlier one freed."""
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]
    import airflow.sdk.execution_time.task_runner  # noqa: F401
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    dags = DagBag(dag_folder=dag_file).dags
    in_process_api_server().app  # noqa: B018  (built once, as a worker's API server is: some 2 s of CPU)
    gc.freeze()  # what the worker holds is never collected again in a task's process (as Airflow's own forks do)
    with os.fdopen(told, "w") as replies:
        for line in sys.stdin:
            sys.stdout.flush()
            sys.stderr.flush()
            child = os.fork()
            if child == 0:
                status = 1
                try:
                    settings.engine.dispose(close=False)  # the database connections stay the worker's
                    run_one_task(Path(line.strip()), dags)
                    status = 0
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(status)
            _, status = os.waitpid(child, 0)
            replies.write(f"{os.waitstatus_to_exitcode(status)}\n")
            replies.flush()


def run_one_task(folder: Path, dags: dict) -> None:
    """Run one task instance in this process, freshly forked from the task worker, as a worker's task process runs
    it (Airflow's task runner), and write its figures and end state into ``folder``/answer.json: its peak RSS and
    CPU are this process's, from the fork on."""
    from airflow.sdk.api.datamodels._generated import TaskInstance
    from airflow.sdk.execution_time.supervisor import run_task_in_process

    order = json.loads((folder / "order.json").read_text())
    ti = TaskInstance(**order["ti"])
    figures: list[TaskFigures] = []
    measure_tasks(None, figures, Path(order["profiles"]) if order["profiles"] else None, reset_peak=False)
    result = run_task_in_process(ti=ti, task=dags[ti.dag_id].task_dict[ti.task_id])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    task = figures[0] if figures else TaskFigures(ti.task_id, ti.map_index, 0.0, 0.0, 0, 0)
    task.peak_rss, task.process_cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    state = result.ti.state or result.state
    (folder / "answer.json").write_text(json.dumps({"state": str(getattr(state, "value", state)),
                                                   "figures": asdict(task)}))


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
    """With warm task processes: peak RSS of a process holding what a worker's task process may load before its
    data: Airflow's task runner, the Celery executor, the parsed DAG file and the libraries tasks use (GX
    imported, Arrow's memory pool made by a first Parquet read). This process has used them too before it
    measures (``use_task_libraries``), so a task's growth never counts them a second time; the growth is a lower
    bound (memory earlier tasks freed may serve it), which fresh task processes do not have."""
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
           parallel_reads: int, fresh_mib: float | None) -> dict:
    """Print and return a phase's figures. ``fresh_mib``: with warm task processes, a fresh task process's
    baseline (a task on a worker is estimated at it plus the task's growth); None with fresh task processes."""
    calls = Counter(name for task in figures for name, _ in task.calls)
    total = sum(calls.values())
    tasks_cpu = sum(t.cpu for t in figures)
    process_cpu = cpu + (sum(t.process_cpu for t in figures) if fresh_mib is None else 0.0)
    where = ("dag.test process and the task processes, each started and parsing the DAG file" if fresh_mib is None
             else "dag.test process")
    print(f"\n== {label}: {state}; {total:,} Moodle calls (naive: {naive:,}, {total / max(naive, 1):.2%} of it); "
          f"wall {wall:.1f} s; DAG-side CPU {process_cpu:.1f} s ({where}; the stand-in's own CPU excluded)")
    for name, number in sorted(calls.items()):
        print(f"    {number:8,d}  {name}")
    groups: dict[str, list[TaskFigures]] = defaultdict(list)
    for task in figures:
        groups[task.task_id].append(task)
    memory = "peak RSS of its process" if fresh_mib is None else "peak RSS here, growth, on a worker"
    print(f"    {'task':32} {'tries':>5} {'wall s':>8} {'CPU s':>8} {'calls':>7} {'live s':>8}   {memory} (MiB)")
    live = 0.0
    by_task: dict[str, dict[str, int]] = {}
    largest = ("", 0.0)
    for task_id, tasks in groups.items():
        mapped = len(tasks) > 1 or tasks[0].map_index >= 0
        task_live = spread([t.live_seconds for t in tasks], parallel_reads) if mapped else tasks[0].live_seconds
        live += task_live
        peak, growth = max(t.peak_rss for t in tasks) / 1024, max(t.growth for t in tasks) / 1024
        on_worker = peak if fresh_mib is None else fresh_mib + growth
        largest = max(largest, (task_id, on_worker), key=lambda named: named[1])
        shown = f"{peak:6.0f}" if fresh_mib is None else f"{peak:6.0f} {growth:6.0f} {on_worker:6.0f}"
        print(f"    {task_id:32} {len(tasks):5d} {sum(t.wall for t in tasks):8.1f} {sum(t.cpu for t in tasks):8.1f} "
              f"{sum(len(t.calls) for t in tasks):7,d} {task_live:8.1f}   {shown}")
        by_task[task_id] = dict(sorted(Counter(name for t in tasks for name, _ in t.calls).items()))
        if by_task[task_id]:
            print("        " + ", ".join(f"{name} {number:,}" for name, number in by_task[task_id].items()))
    how = ("in a fresh process of its own, as on a worker" if fresh_mib is None else
           f"on a worker, estimated: a fresh task process ({fresh_mib:.0f} MiB) plus the task's growth here")
    print(f"    largest task: {largest[0]} {largest[1]:.0f} MiB ({how}); tasks' CPU {tasks_cpu:.1f} s; "
          f"projected live-site wall {live / 60:.1f} min ({parallel_reads} parallel reads, calls' latency by size; "
          "other tasks one after another)")
    return {"phase": label, "state": state, "calls": total, "naive": naive, "calls_by_function": dict(sorted(
            calls.items())), "calls_by_task": by_task, "wall_s": round(wall, 1), "process_cpu_s": round(process_cpu, 1),
            "tasks_cpu_s": round(tasks_cpu, 1), "largest_task": largest[0], "largest_task_mib": round(largest[1]),
            "task_cpu_s": {task_id: round(sum(t.cpu for t in tasks), 2) for task_id, tasks in groups.items()},
            "task_mib": {task_id: round(max(t.peak_rss for t in tasks) / 1024) for task_id, tasks in groups.items()},
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
    parser.add_argument("--task-processes", choices=("fresh", "warm"), default="fresh",
                        help="run each task in a fresh process of its own, as a worker does (default), or all "
                             "in the dag.test() process (quicker; memory then estimated)")
    parser.add_argument("--results-from", choices=("per-user", "reports"), default="per-user",
                        help="the results flow's read: per user and course (sites without reports), or the Report "
                             "Builder reports of the README's recipe (moodle_reports)")
    parser.add_argument("--task-worker", nargs=2, help=argparse.SUPPRESS)  # the task worker: its reply fd, DAG file
    args = parser.parse_args()
    if args.task_worker:
        serve_tasks(int(args.task_worker[0]), args.task_worker[1])
        return

    home = Path(tempfile.mkdtemp(prefix="psiber-moodle-bench-"))
    saved = args.state_dir / "loaded.json" if args.state_dir else None
    loaded = json.loads(saved.read_text()) if saved and saved.exists() else None
    if loaded:
        shutil.copytree(args.state_dir / "home", home, dirs_exist_ok=True)
        args.employees, args.courses, args.enrolments = loaded["employees"], loaded["courses"], loaded["enrolments"]
        args.results_from = loaded.get("results_from", "per-user")
    integrations = home / "integrations"  # the integration files, the demo's with the reports when they are read
    if not integrations.exists():
        shutil.copytree(ROOT / "include" / "integrations", integrations)
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR", "MOODLE_SYNC_TASK_RETRIES": "0",
        "MOODLE_SYNC_DATA_DIR": str(home / "runs"),
        "PSIBER_MOODLE_INTEGRATIONS": str(integrations),
    })
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "dags")]
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)

    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import create_engine, text

    from psiber.config import load_integration
    from psiber.demo_company import seed_demo_company

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
    if args.results_from == "reports" and not loaded:
        reports = site.add_reports()
        with (integrations / "demo.yaml").open("a") as demo:
            demo.write("moodle_reports:\n" + "".join(f"  {name}: {number}\n" for name, number in reports.items()))
    integration = load_integration(integrations / "demo.yaml")
    parallel_reads = integration.results.max_parallel_reads
    print(f"Results read {'from the Report Builder reports' if integration.moodle_reports else 'per user and course'}")
    now = int(time.time())
    course_ids = loaded["course_ids"] if loaded else site.add_courses(args.courses, now - 90 * DAY)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[f"psiber_moodle_{integration.key}"]
    figures: list[TaskFigures] = []
    fresh = args.task_processes == "fresh"
    worker = run_tasks_in_fresh_processes(site, figures, dag.fileloc, args.profile) if fresh else None
    if not fresh:
        measure_tasks(site, figures, args.profile)
    fresh_mib = None if fresh else fresh_task_process_mib()
    print("Live projection: per-call latency of a live Moodle 4.5.6 site by the call's size, medians recorded "
          f"there, {parallel_reads} parallel reads:\n    " + "\n    ".join(latency_model()))
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
        if not fresh:
            use_task_libraries()  # as the baseline holds them
        if loaded:  # the process as the initial load left it: Airflow's in-process API built
            from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

            InProcessExecutionAPI().app  # noqa: B018  (its imports, some 3 s of CPU, are made once a process)
            if not fresh:  # what a process pays once (its first task run, connections) lands in an unreported night
                dag.test(run_conf={"full_results_sync": False})

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
                    "course_ids": course_ids, "naive": naive, "results_from": args.results_from})
        run("night, nothing changed", naive, full_results_sync=False)  # dag.test() keeps the last run's params
        changed = change_hr_records(engine, list(integration.payrolls), args.hr_changes)
        active = site.be_active(course_ids, args.active, int(time.time()) - 600)
        run(f"night, {changed} HR changes, {active} learners active", naive + active, full_results_sync=False)
    finally:
        if worker and worker.stdin:
            worker.stdin.close()  # the task worker ends with its orders
            worker.wait()
        site.stop()
        site_process.shutdown()
    if args.json:
        args.json.write_text(json.dumps({
            "size": {"employees": args.employees, "courses": args.courses, "enrolments": args.enrolments},
            "task_processes": args.task_processes, "results_from": args.results_from, "parallel_reads": parallel_reads,
            "latency_model": latency_model(), "phases": phases}, indent=1))


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

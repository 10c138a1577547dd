"""The durable sync report and course status: tables in the integration's own database (its kind's report
Connection).

``summarize_run`` writes each run's report here (replacing it whole when the run is summarised
again after a cleared task), so the report outlives the pruning of run directories and the
Airflow UI plugin can read it from any machine. SQL lives in ``include/sql/report_*.sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, bindparam, inspect, text

from sync_common.database import sql, statements
from sync_common.record_names import name_of, named_keys
from sync_common.run_files import RunPath
from sync_common.run_summary import action_rank, is_problem

MAX_REPORT_TEXT = 300  # record column width; reasons are kept whole
ALL_ROWS = 2**31 - 1
OWNER_SEPARATOR = " / "  # between the owners of one record ("Moodle administrator / IT (network)")

Pair = tuple[int, int]  # (Moodle course id, Moodle user id): one row of the course status
MAX_NAME = 250  # the name column's width
# Rows sent to the database in one statement: outcomes and learner rows are made and written this many at a time,
# never all at once (a first load at 20,000 employees has ~100,000 outcomes and 120,000 learner rows).
ROWS_PER_WRITE = 5_000


@dataclass(frozen=True)
class CourseReads:
    """What a summarised run read for the course status: learner rows to write (new or changed; gone through once,
    as they are written), (course, user) pairs to delete, and every course it read (``moodle_course_id``,
    ``course_code``, ``course_name`` and ``not_counted``: why the course's learners are left out of the totals, ''
    when they count); ``courses`` None: the run read no course, and the courses stored stand."""

    upserts: Iterable[dict] = ()
    removed: list[Pair] = field(default_factory=list)
    courses: list[dict] | None = None


# Reads a summarised run's course status: (integration, report database, summary, run directory) → its reads.
CourseLearners = Callable[[Any, Engine, dict, RunPath], CourseReads]


class Integration(Protocol):
    """What a run's report needs of an integration, whatever its source system."""

    @property
    def key(self) -> str: ...

    keep_reports_days: int


REPORT_TABLES = ("sync_report_run", "sync_report_count", "sync_report_task", "sync_report_outcome",
                 "sync_course_learner", "sync_report_try", "sync_report_failure", "sync_course")
# Columns newer than their tables, and the SQL file that adds each to a table made before it.
LATER_COLUMNS = {("sync_report_run", "preview"): "report_add_preview",
                 ("sync_report_run", "targeted"): "report_add_targeted",
                 ("sync_report_outcome", "name"): "report_add_outcome_name"}


def create_report_schema(engine: Engine) -> None:
    """Create the report tables if missing, and add columns newer than the tables (idempotent).

    The DDL runs only when a table or column is missing: on PostgreSQL even a CREATE INDEX IF NOT EXISTS
    locks its table, and pages would then wait for a run writing its report.
    """
    present = inspect(engine)
    if not all(present.has_table(table) for table in REPORT_TABLES):
        with engine.begin() as connection:
            for statement in statements("report_schema"):
                connection.execute(text(statement))
        present = inspect(engine)
    for (table, column), adding in LATER_COLUMNS.items():
        if column not in {found["name"] for found in present.get_columns(table)}:
            with engine.begin() as connection:
                connection.execute(text(sql(adding)))


def _utc(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def changed_fields(outcome: dict) -> str:
    """The fields an update changed: the outcome's own list, else its reason's 'changed: a, b'."""
    if outcome.get("changed"):
        return ", ".join(outcome["changed"])
    reason = outcome.get("reason") or ""
    return reason.removeprefix("changed: ") if reason.startswith("changed: ") else ""


def save_run_report(engine: Engine, integration_key: str, dag_id: str, summary: dict, keep_days: int,
                    learners: CourseReads = CourseReads(), names: Mapping[str, str] | None = None) -> None:
    """Write one run's report and the course status it read, and drop reports older than ``keep_days``.
    ``names``: record key (lower case) → the name shown beside a record (``sync_common.record_names``).

    All in one transaction (after creating the tables if missing): a report is either whole or absent. A run
    summarised again (cleared, then run again) keeps its first start time and every earlier try with why it
    failed; the rest of the report, and the courses' read time, is the latest try's.
    """
    names = names or {}
    keys = {"integration_name": integration_key, "run_id": summary["run_id"]}
    outcomes = summary["outcomes"]  # a list, or the steps' files read again (``StepOutcomes``): gone through twice
    finished = _utc(summary["finished_at"])
    assert finished is not None, "a summary is written when its run finished"
    started = _utc(summary.get("started_at"))
    attempt = {**keys, "try_number": int(summary.get("try_number") or 0)}
    create_report_schema(engine)
    with engine.begin() as connection:
        earlier = [row.started_at for row in connection.execute(text(sql("report_select_run")), keys)]
        starts = [moment for moment in (*(_utc(value) for value in earlier), started) if moment is not None]
        first_start = min(starts, default=None)
        for statement in statements("report_delete_run"):
            connection.execute(text(statement), keys)
        for statement in statements("report_delete_try"):
            connection.execute(text(statement), attempt)
        connection.execute(text(sql("report_insert_try")), {
            **attempt, "started_at": started, "finished_at": finished,
            "state": summary.get("state") or ("success" if summary["complete"] else "failed")})
        _insert_many(connection, "report_insert_failure", [
            {**attempt, "task": failure["task"], "task_id": failure["task_id"],
             "map_index": _map_index(failure), "error": failure["error"][:200], "detail": failure["detail"],
             "owner": failure["owner"][:200], "next_step": failure["next_step"],
             "transient": int(bool(failure.get("transient"))), "failed_at": _utc(failure.get("failed_at"))}
            for failure in summary.get("failures", [])])
        connection.execute(text(sql("report_insert_run")), {
            **keys, "dag_id": dag_id, "started_at": first_start, "finished_at": finished,
            "complete": int(summary["complete"]), "moodle_calls": int(summary.get("moodle_calls", 0)),
            "outcomes": len(outcomes), "problems": sum(is_problem(o["action"]) for o in outcomes),
            "preview": int(summary.get("preview", False)),
            "targeted": ", ".join(summary.get("targeted_records") or []),
        })
        counts = [{**keys, "flow": flow, "action": action, "records": int(records)}
                  for flow, actions in summary["counts"].items() for action, records in actions.items()]
        _insert_many(connection, "report_insert_count", [{**row, "position": n} for n, row in enumerate(counts)])
        _insert_many(connection, "report_insert_task", [
            {**keys, "task_id": task["task_id"], "map_index": _map_index(task), "state": str(task["state"]),
             "duration": task.get("duration")} for task in summary.get("tasks", [])])
        _insert_many(connection, "report_insert_outcome", (
            {**keys, "position": n, "flow": o["flow"], "action": o["action"], "problem": int(is_problem(o["action"])),
             "record": None if o["record"] is None else str(o["record"])[:MAX_REPORT_TEXT],
             "reason": o.get("reason") or "", "owner": o.get("owner") or "", "changed_fields": changed_fields(o),
             "name": name_of(o["record"], names)[:MAX_NAME]}
            for n, o in enumerate(outcomes)))
        _save_course_reads(connection, integration_key, summary["run_id"], finished, learners)
        cutoff = finished - timedelta(days=keep_days)
        for statement in statements("report_prune"):
            connection.execute(text(statement), {"integration_name": integration_key, "cutoff": cutoff})


def _save_course_reads(connection: Connection, integration_key: str, run_id: str, read_at: datetime,
                       reads: CourseReads) -> None:
    """The learner rows a run changed, and the courses it read (replacing those read before), read at the end of
    the try that read them: a cleared run that reads results again moves the read time on."""
    now = datetime.now(UTC).replace(tzinfo=None)
    _insert_many(connection, "report_upsert_course_learner",
                   ({**row, "integration_name": integration_key, "updated_at": now} for row in reads.upserts))
    _insert_many(connection, "report_delete_course_learner", [
        {"integration_name": integration_key, "moodle_course_id": course, "moodle_user_id": user}
        for course, user in reads.removed])
    if reads.courses is not None:
        connection.execute(text(sql("report_delete_courses")), {"integration_name": integration_key})
        _insert_many(connection, "report_insert_course", [
            {**course, "integration_name": integration_key, "run_id": run_id, "read_at": read_at}
            for course in reads.courses])


def write_run_report(integration: Integration, engine: Engine, dag_id: str, summary: dict, run_dir: RunPath,
                     course_learners: CourseLearners | None = None,
                     record_names: Callable[[RunPath, Collection[str]], Mapping[str, str]] | None = None) -> None:
    """The report of a summarised run, with the course status ``course_learners`` reads from the run (None: the
    integration's runs read no results) and the names ``record_names`` reads from it for its records (None: no
    names)."""
    create_report_schema(engine)
    learners = CourseReads() if course_learners is None else course_learners(integration, engine, summary, run_dir)
    names = {} if record_names is None else record_names(
        run_dir, named_keys(outcome["record"] for outcome in summary["outcomes"]))
    save_run_report(engine, integration.key, dag_id, summary, integration.keep_reports_days, learners, names)


def _map_index(task: dict) -> int:
    return -1 if task.get("map_index") is None else int(task["map_index"])


def _insert_many(connection: Connection, name: str, rows: Iterable[dict]) -> None:
    """``rows`` made and written ``ROWS_PER_WRITE`` at a time (none: no statement)."""
    statement, found = text(sql(name)), iter(rows)
    while chunk := list(islice(found, ROWS_PER_WRITE)):
        connection.execute(statement, chunk)


def _rows(engine: Engine, query, params: dict) -> list[dict]:
    """Rows as dicts, made from plain tuples: a row mapping's per-key access costs seconds on the course
    status of 10,000 learners."""
    with engine.connect() as connection:
        result = connection.execute(query, params)
        keys = list(result.keys())
        return [dict(zip(keys, row, strict=True)) for row in result]


def course_learners_of(engine: Engine, integration_key: str, course_ids: Iterable[int],
                       user_ids: Iterable[int]) -> dict[Pair, dict]:
    """The stored learner rows of the courses ``course_ids`` and of the users ``user_ids``, by pair (one id a bound
    variable: at most courses + linked users, 20,300 at 20,000 employees, within SQLite's 32,766)."""
    courses, users = set(course_ids), set(user_ids)
    query = text(sql("report_select_course_learners_of")).bindparams(
        bindparam("course_ids", expanding=True), bindparam("user_ids", expanding=True))
    return _by_pair(_rows(engine, query, {"integration_name": integration_key, "course_ids": sorted(courses),
                                          "user_ids": sorted(users)}))


def _by_pair(rows: list[dict]) -> dict[Pair, dict]:
    return {(int(row["moodle_course_id"]), int(row["moodle_user_id"])): row for row in rows}


def stored_course_learner_keys(engine: Engine, integration_key: str) -> tuple[list[dict], list[dict]]:
    """Per course and per user of the stored learner rows, the code and name (course) or employee number and name
    (user) as stored, each as ``min_*`` and ``max_*``: one row per course or user, not per learner row."""
    keys = {"integration_name": integration_key}
    return (_rows(engine, text(sql("report_select_course_learner_courses")), keys),
            _rows(engine, text(sql("report_select_course_learner_users")), keys))


# -- reading, for the UI


@dataclass(frozen=True)
class OutcomeFilter:
    """What the report page asks for: '' means any; ``search`` is a part of the record."""

    flow: str = ""
    action: str = ""
    owner: str = ""
    search: str = ""

    def params(self) -> dict:
        owner = _like_escaped(self.owner)
        return {"flow": self.flow, "action": self.action, "owner": self.owner,
                "owner_first": f"{owner}{OWNER_SEPARATOR}%", "owner_last": f"%{OWNER_SEPARATOR}{owner}",
                "owner_inside": f"%{OWNER_SEPARATOR}{owner}{OWNER_SEPARATOR}%",
                "search": self.search.strip(), "pattern": f"%{_like_escaped(self.search.strip().lower())}%"}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def owners(engine: Engine, integration_key: str, run_id: str) -> list[str]:
    """Everyone with records to look at in a run: each of a shared owner's parts ("Moodle administrator / IT"
    is both), so that filtering by one lists every record they share."""
    found = _rows(engine, text(sql("report_select_owners")), {"integration_name": integration_key, "run_id": run_id})
    return sorted({part.strip() for row in found for part in row["owner"].split(OWNER_SEPARATOR) if part.strip()})


def runs(engine: Engine, integration_key: str, limit: int = 100) -> list[dict]:
    """The integration's latest runs, newest first, each with its counts per flow."""
    found = _rows(engine, text(sql("report_select_runs")), {"integration_name": integration_key, "limit": limit})
    counts = run_counts(engine, integration_key, [run["run_id"] for run in found])
    return [{**run, "counts": counts.get(run["run_id"], {})} for run in found]


def run_counts(engine: Engine, integration_key: str, run_ids: Iterable[str]) -> dict[str, dict[str, dict[str, int]]]:
    run_ids = list(run_ids)
    if not run_ids:
        return {}
    query = text(sql("report_select_counts")).bindparams(bindparam("run_ids", expanding=True))
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for row in _rows(engine, query, {"integration_name": integration_key, "run_ids": run_ids}):
        counts.setdefault(row["run_id"], {}).setdefault(row["flow"], {})[row["action"]] = int(row["records"])
    return counts


def run(engine: Engine, integration_key: str, run_id: str) -> dict | None:
    keys = {"integration_name": integration_key, "run_id": run_id}
    found = _rows(engine, text(sql("report_select_run")), keys)
    if not found:
        return None
    failures = _rows(engine, text(sql("report_select_failures")), keys)
    tries = [{**attempt, "failures": [f for f in failures if f["try_number"] == attempt["try_number"]]}
             for attempt in _rows(engine, text(sql("report_select_tries")), keys)]
    return {**found[0], "state": "success" if found[0]["complete"] else "failed",
            "counts": run_counts(engine, integration_key, [run_id]).get(run_id, {}),
            "tasks": _rows(engine, text(sql("report_select_tasks")), keys),
            "owners": owners(engine, integration_key, run_id),
            "tries": tries, "failures": tries[-1]["failures"] if tries else []}


def outcomes(engine: Engine, integration_key: str, run_id: str, chosen: OutcomeFilter, limit: int | None = None,
             offset: int = 0) -> tuple[list[dict], int]:
    """One page of a run's outcomes (problems first) matching the filter, and how many match in all
    (0 for a page past the end)."""
    page = _rows(engine, text(sql("report_select_outcomes")), {
        "integration_name": integration_key, "run_id": run_id, **chosen.params(),
        "limit": ALL_ROWS if limit is None else limit, "offset": offset})
    return page, int(page[0]["matching"]) if page else 0


def outcome_chunks(engine: Engine, integration_key: str, run_id: str, chosen: OutcomeFilter,
                   size: int) -> Iterator[list[dict]]:
    """Every outcome matching the filter, in the report's order, ``size`` at a time (the CSV streams them)."""
    offset = 0
    while True:
        chunk, _ = outcomes(engine, integration_key, run_id, chosen, size, offset)
        if chunk:
            yield chunk
        if len(chunk) < size:
            return
        offset += size


def record_history(engine: Engine, integration_key: str, record: str, limit: int = 1000) -> list[dict]:
    """What every kept run did to one record (an employee number, an External ID) and to the records named after
    it (its results, its enrolments), newest run first."""
    wanted = record.strip().lower()
    if not wanted:
        return []
    return _rows(engine, text(sql("report_select_record_history")), {
        "integration_name": integration_key, "record": wanted, "named_after": f"{_like_escaped(wanted)} %",
        "limit": limit})


COURSE_COUNTS = ("enrolled", "in_progress", "completed", "passed", "failed")


def course_status(engine: Engine, integration_key: str) -> list[dict]:
    """Every course the latest run that read results saw, by course code, with its linked learners counted and
    why they are left out of the totals ('' when they count); a course with learners that no run listed yet (a
    report database from before courses were listed) comes with its learners' read time."""
    keys = {"integration_name": integration_key}
    counted = {int(row["moodle_course_id"]): row for row in _rows(engine, text(sql("report_select_course_status")),
                                                                 keys)}
    listed = {int(course["moodle_course_id"]): course for course in _rows(engine, text(sql("report_select_courses")),
                                                                         keys)}
    rows = [{"moodle_course_id": course_id, "not_counted": "", "read_at": row["updated_at"], **row}
            for course_id, row in counted.items() if course_id not in listed]
    rows += [{**dict.fromkeys(COURSE_COUNTS, 0), **counted.get(course_id, {}), **course}
             for course_id, course in listed.items()]
    return sorted(rows, key=lambda row: (str(row["course_code"]), int(row["moodle_course_id"])))


def course_totals(courses: list[dict]) -> dict[str, int]:
    """The course status' totals row: the learners of the courses that count, and how many courses do and not."""
    counting = [course for course in courses if not course["not_counted"]]
    return {**{count: sum(int(course[count] or 0) for course in counting) for count in COURSE_COUNTS},
            "courses": len(counting), "not_counted": len(courses) - len(counting)}


def course_learners(engine: Engine, integration_key: str, moodle_course_id: int) -> list[dict]:
    return _rows(engine, text(sql("report_select_course_learners")),
                 {"integration_name": integration_key, "moodle_course_id": moodle_course_id})


def learner_status(row: dict) -> str:
    """The one word support reads for a learner: passed, failed, completed or in progress."""
    if row.get("passed") is not None:
        return "passed" if int(row["passed"]) else "failed"
    return "completed" if int(row.get("completed") or 0) else "in progress"


def ordered_counts(counts: dict[str, dict[str, int]]) -> list[tuple[str, list[tuple[str, int]]]]:
    """Flows (in the order the run's summary gave them) and their actions in display order (for tables whose
    columns come from the data)."""
    return [(flow, sorted(actions.items(), key=lambda item: action_rank(item[0]))) for flow, actions in counts.items()]

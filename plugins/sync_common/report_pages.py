"""The sync report pages the Airflow UI shows as tabs: a FastAPI app mounted on Airflow's API server.

Every page and the CSV check that the caller may read the DAG's runs (Airflow's own
``requires_access_dag``): anonymous 401, no access 403, whatever the auth manager. Pages are
server-rendered with autoescaping (report data never runs as script in the user's session),
and CSV cells that a spreadsheet would take for a formula are neutralised. The app serves the kinds of
integration it is built with (``report_app``).

Each page links to its own address in Airflow's frame: the plugin's navigation view (``NAV_ROUTE``) opens the
path after ``/plugin/<NAV_ROUTE>`` in its frame, so that address can be bookmarked or sent. A page that cannot be
shown (401, 403, 404, 422, 500, 503) is an HTML page saying what happened and what to do when a browser asks for
it; the CSV and other callers get the status with JSON, as from any API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.exceptions import AirflowNotFoundException
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_common import airflow_runs, report_store
from sync_common.database import engine_from_connection
from sync_common.integration_kinds import IntegrationKind, ReportedIntegration, integrations_by_dag
from sync_common.run_summary import PROBLEM_ACTIONS, action_rank

URL_PREFIX = "/sync-report"
NAV_ROUTE = "sync-reports"  # the url_route of the plugin's navigation view, whose frame follows the address
PAGE_SIZE = 100  # records per page: a 10,000-employee first night stays a page a browser shows at once
CSV_CHUNK = 2000  # records read at a time while the CSV streams
CLEAR_TO_START = timedelta(minutes=10)  # a cleared run starts again within this (the scheduler's loop)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("report_templates")),
                         autoescape=select_autoescape(default=True, default_for_string=True))

can_read_runs = Depends(requires_access_dag("GET", DagAccessEntity.RUN))
pages = APIRouter()


class UnreadableReports(Exception):
    """An integration's report database cannot be opened; the message names its Connection and who must act."""


def report_app(kinds: Iterable[IntegrationKind]) -> FastAPI:
    """The pages, for the integrations of these kinds."""
    app = FastAPI(title="Moodle sync report", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.kinds = tuple(kinds)
    app.include_router(pages)
    app.add_exception_handler(UnreadableReports, _unreadable)
    app.add_exception_handler(StarletteHTTPException, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _broken)
    return app


# What a page that cannot be shown says: what happened, and what to do.
ERRORS = {
    401: ("You are not logged in to Airflow",
          "Your Airflow session has ended, or the page was opened outside Airflow: log in to Airflow again, then "
          "open the page from its tab or its link."),
    403: ("Your Airflow role may not read this integration's runs",
          "Ask your Airflow administrator for read access to this DAG's runs (a support role needs read on the "
          "DAG and its DAG Runs)."),
    404: ("Not found",
          "Check the address. A run's report is written by its summarize_run task when the run ends, and is "
          "deleted after the integration's keep_reports_days."),
    422: ("This address has a value the page cannot use",
          "Open the page again from its tab, or correct the address (pages are numbered from 1)."),
    500: ("This page could not be shown",
          "The API server's log has the error. Tell your Airflow administrator which page you opened and when; "
          "the sync runs themselves are not affected."),
    503: ("The reports of this integration cannot be read", "See the reason above: it names who must act."),
}


def _wants_page(request: Request) -> bool:
    """A browser opening a page (in Airflow's frame), not the CSV nor a script asking for data."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.endswith(".csv")


def _error_page(request: Request, status: int, detail: str, headers: dict | None = None) -> HTMLResponse:
    title, what_to_do = ERRORS.get(status, ERRORS[500])
    return _page(request, "error.html", status=status, title=title, detail=detail, what_to_do=what_to_do,
                 status_code=status, headers=headers, linked=False)


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if not _wants_page(request):
        return await http_exception_handler(request, error)
    return _error_page(request, error.status_code, str(error.detail), getattr(error, "headers", None))


async def _invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if not _wants_page(request):
        return await request_validation_exception_handler(request, error)
    wrong = "; ".join(f"{'.'.join(map(str, problem['loc'][1:]))}: {problem['msg']}" for problem in error.errors())
    return _error_page(request, 422, wrong)


async def _unreadable(request: Request, error: Exception) -> Response:
    if not _wants_page(request):
        return JSONResponse({"detail": str(error)}, 503)
    return _error_page(request, 503, str(error))


async def _broken(request: Request, error: Exception) -> Response:
    """Any other error: the server's log keeps its traceback (Starlette logs it after this answer)."""
    if not _wants_page(request):
        return JSONResponse({"detail": "Internal Server Error"}, 500)
    return _error_page(request, 500, type(error).__name__)


def _kinds(request: Request) -> tuple[IntegrationKind, ...]:
    return request.app.state.kinds


def _integration(request: Request, dag_id: str) -> ReportedIntegration:
    integration = integrations_by_dag(_kinds(request)).get(dag_id)
    if integration is None:
        raise HTTPException(404, f"'{dag_id}' is not a Moodle sync integration")
    return integration


@contextmanager
def _database(integration: ReportedIntegration) -> Iterator[Engine]:
    """The integration's report database; ``UnreadableReports`` when its Connection is missing, of a type no
    report database has, or its database cannot be read."""
    conn_id = integration.report_conn_id
    try:
        engine = engine_from_connection(conn_id)
    except AirflowNotFoundException as error:
        raise UnreadableReports(
            f"the Airflow Connection '{conn_id}' does not exist: its reports cannot be read (owner: Airflow "
            f"administrator, who adds the Connection, or the integration's maintainer, who names it)") from error
    except ValueError as error:
        raise UnreadableReports(str(error)) from error
    try:
        report_store.create_report_schema(engine)
        yield engine
    except SQLAlchemyError as error:
        raise UnreadableReports(f"the database of the Airflow Connection '{conn_id}' cannot be read "
                                f"({type(error).__name__}; owner: its database administrator)") from error
    finally:
        engine.dispose()


def _ui_root(request: Request) -> str:
    """Airflow's UI address: the API server root this app is mounted under."""
    return request.scope.get("root_path", "").removesuffix(URL_PREFIX)


def page_link(request: Request) -> str:
    """This page's address in Airflow's frame: the navigation view opens the path after its route in its frame."""
    root = request.scope.get("root_path", "")
    path = quote(root + request.url.path.removeprefix(root), safe="/:+@")
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{_ui_root(request)}/plugin/{NAV_ROUTE}{path}{query}"


def _page(request: Request, template: str, status_code: int = 200, headers: dict | None = None, linked: bool = True,
          **values) -> HTMLResponse:
    """A page, with a link to its own address in Airflow's frame unless ``linked`` is False (an error)."""
    html = _TEMPLATES.get_template(template).render(
        root=request.scope.get("root_path", ""), ui=_ui_root(request), quote=quote, when=when, day=day,
        duration=duration, problem_actions=PROBLEM_ACTIONS, page_link=page_link(request) if linked else "",
        **values)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def when(value) -> str:
    if value in (None, ""):
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def day(value) -> str:
    return "" if value in (None, "") else str(value)[:10]


def duration(started, finished) -> str:
    if started in (None, "") or finished in (None, ""):
        return ""
    seconds = int((datetime.fromisoformat(str(finished)) - datetime.fromisoformat(str(started))).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def run_label(run: dict, airflow: dict | None) -> str:
    """How a run is listed: its note in Airflow, else its logical date, else when it was due or started (its raw
    id shows on hover)."""
    airflow = airflow or {}
    moment = airflow.get("logical_date") or airflow.get("run_after") or run.get("started_at")
    return airflow.get("note") or (f"{when(moment)} UTC" if moment else run["run_id"])


def with_airflow(dag_id: str, found: list[dict]) -> list[dict]:
    """Runs as Airflow sees them now: the state (running again after a Clear) and the label (``run_label``)."""
    facts = airflow_runs.runs(dag_id, [run["run_id"] for run in found])
    return [{**run, "state": facts.get(run["run_id"], {}).get("state") or ("success" if run["complete"] else "failed"),
             "label": run_label(run, facts.get(run["run_id"]))} for run in found]


def run_history(tries: list[dict], clears: list[dict]) -> list[dict]:
    """Each try of a run as support reads it: started (or cleared, by whom when Airflow's audit log says) and
    how it ended, with why its tasks failed. A Clear starts a try: Airflow sets the run's start to the Clear's
    time, so a Clear the audit log does not hold (the CLI's) is told by that start alone."""
    history = []
    for number, attempt in enumerate(tries):
        if number == 0:
            history.append({"event": "started", "at": attempt["started_at"], "by": "", "failures": []})
        else:
            earlier, start = _moment(tries[number - 1]["finished_at"]), _moment(attempt["started_at"])
            clear = [c for c in clears if _between(_moment(c["at"]), earlier, start)]
            history.append({"event": "cleared", "at": clear[-1]["at"] if clear else attempt["started_at"],
                            "by": clear[-1]["by"] if clear else "", "failures": []})
        history.append({"event": "succeeded" if attempt["state"] == "success" else "failed",
                        "at": attempt["finished_at"], "by": "", "failures": attempt["failures"]})
    return history


def _between(moment: datetime | None, after: datetime | None, start: datetime | None) -> bool:
    if moment is None or after is None or start is None:
        return False
    return after <= moment <= start + CLEAR_TO_START


def _moment(value) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def task_page(ui: str, dag_id: str, run_id: str, task: dict) -> str:
    """Airflow's page of a task instance, whose first tab is its log."""
    path = f"{ui}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task['task_id'])}"
    return path if int(task["map_index"]) < 0 else f"{path}/mapped/{int(task['map_index'])}"


def _task_name(task: dict) -> str:
    index = int(task["map_index"])
    return task["task_id"] if index < 0 else f"{task['task_id']}[{index}]"


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: a leading =, +, -, @ (a formula) gets a quote before it."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


@pages.get("/", response_class=HTMLResponse)
def integrations_page(request: Request, user: GetUserDep):
    """The integrations this user may read, with the state and counts of their last run; one whose reports cannot
    be read shows why, the others list as usual."""
    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    rows = []
    for dag_id, integration in sorted(integrations_by_dag(_kinds(request)).items()):
        if dag_id not in readable:
            continue
        try:
            with _database(integration) as engine:
                last = report_store.runs(engine, integration.key, limit=1)
        except UnreadableReports as error:
            rows.append({"dag_id": dag_id, "integration": integration, "last": None, "error": str(error)})
            continue
        rows.append({"dag_id": dag_id, "integration": integration,
                     "last": with_airflow(dag_id, last)[0] if last else None})
    return _page(request, "integrations.html", rows=rows)


@pages.get("/dags/{dag_id}/runs", response_class=HTMLResponse, dependencies=[can_read_runs])
def runs_page(request: Request, dag_id: str):
    integration = _integration(request, dag_id)
    with _database(integration) as engine:
        found = with_airflow(dag_id, report_store.runs(engine, integration.key))
    return _page(request, "runs.html", dag_id=dag_id, integration=integration, runs=found,
                 ordered_counts=report_store.ordered_counts)


def _chosen(flow: str, action: str, owner: str, q: str) -> report_store.OutcomeFilter:
    return report_store.OutcomeFilter(flow=flow, action=action, owner=owner, search=q)


@pages.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse, dependencies=[can_read_runs])
def report_page(request: Request, dag_id: str, run_id: str, flow: str = "", action: str = "", owner: str = "",
                q: str = "", page: int = Query(1, ge=1)):
    integration = _integration(request, dag_id)
    chosen = _chosen(flow, action, owner, q)
    with _database(integration) as engine:
        report = report_store.run(engine, integration.key, run_id)
        if report is None:
            raise HTTPException(404, f"no sync report for run '{run_id}' (yet): its summarize_run task writes it")
        shown, total = report_store.outcomes(engine, integration.key, run_id, chosen, PAGE_SIZE,
                                             (page - 1) * PAGE_SIZE)
    filters = {"flow": flow, "action": action, "owner": owner, "q": q}
    ui = _ui_root(request)
    [run] = with_airflow(dag_id, [report])
    explained = {failure["task"] for failure in report["failures"]}
    failed = [{**failure, "log": task_page(ui, dag_id, run_id, failure)} for failure in report["failures"]] + [
        {**task, "task": _task_name(task), "log": task_page(ui, dag_id, run_id, task)} for task in report["tasks"]
        if task["state"] == "failed" and _task_name(task) not in explained]  # reports from before errors were kept
    not_run = [task for task in report["tasks"] if task["state"] == "upstream_failed"]
    history = run_history(report["tries"], airflow_runs.clears(dag_id, run_id)) if report["tries"] else []
    next_at = airflow_runs.next_run(dag_id) if any(failure.get("transient") for failure in failed) else None
    counts = report_store.ordered_counts(report["counts"])
    return _page(request, "report.html", dag_id=dag_id, run_id=run_id, integration=integration, report=report,
                 counts=counts, actions=sorted({action for _, actions in counts for action, _ in actions},
                                               key=action_rank), outcomes=shown, total=total, page=page,
                 pages=max(1, -(-total // PAGE_SIZE)), filters=filters, query=urlencode(filters),
                 failed=failed, not_run=not_run, run=run, history=history, next_at=next_at)


@pages.get("/dags/{dag_id}/records", response_class=HTMLResponse, dependencies=[can_read_runs])
def record_history_page(request: Request, dag_id: str, q: str = ""):
    """One person's history: every kept run's outcome for a record, newest first, each linking to its run's
    report ("why does X have no Moodle account?")."""
    integration = _integration(request, dag_id)
    with _database(integration) as engine:
        found = report_store.record_history(engine, integration.key, q)
    runs = {run["run_id"]: run for run in with_airflow(dag_id, [
        {"run_id": row["run_id"], "started_at": row["started_at"], "complete": True} for row in found])}
    return _page(request, "records.html", dag_id=dag_id, integration=integration, q=q.strip(), found=found,
                 labels={run_id: run["label"] for run_id, run in runs.items()})


@pages.get("/dags/{dag_id}/runs/{run_id}/outcomes.csv", dependencies=[can_read_runs])
def report_csv(request: Request, dag_id: str, run_id: str, flow: str = "", action: str = "", owner: str = "",
               q: str = ""):
    """Streamed a few thousand records at a time, so the CSV of a 10,000-employee night is never whole in memory."""
    integration = _integration(request, dag_id)
    with _database(integration) as engine:
        if report_store.run(engine, integration.key, run_id) is None:
            raise HTTPException(404, f"no sync report for run '{run_id}'")
    name = f"sync-report-{integration.key}-{''.join(c if c.isalnum() else '_' for c in run_id)}.csv"
    return StreamingResponse(csv_lines(integration, run_id, _chosen(flow, action, owner, q)),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


CSV_COLUMNS = ("flow", "record", "name", "action", "reason", "owner", "changed_fields")


def csv_lines(integration: ReportedIntegration, run_id: str, chosen: report_store.OutcomeFilter) -> Iterator[str]:
    """The header, then the matching records ``CSV_CHUNK`` at a time, each chunk read when the last is sent."""
    yield _csv_text([CSV_COLUMNS])
    with _database(integration) as engine:
        for rows in report_store.outcome_chunks(engine, integration.key, run_id, chosen, CSV_CHUNK):
            yield _csv_text([csv_cell(row[column]) for column in CSV_COLUMNS] for row in rows)


def _csv_text(rows: Iterable[Iterable[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@pages.get("/dags/{dag_id}/courses", response_class=HTMLResponse, dependencies=[can_read_runs])
def courses_page(request: Request, dag_id: str):
    """Airflow shows the tab on every DAG: an integration whose runs read no results says so."""
    integration = _integration(request, dag_id)
    if not integration.kind.course_status:
        return _page(request, "no_course_status.html", dag_id=dag_id, integration=integration,
                     kinds=[kind.label for kind in _kinds(request) if kind.course_status])
    with _database(integration) as engine:
        courses = report_store.course_status(engine, integration.key)
    return _page(request, "courses.html", dag_id=dag_id, integration=integration, courses=courses,
                 totals=report_store.course_totals(courses))


@pages.get("/dags/{dag_id}/courses/{course_id}", response_class=HTMLResponse, dependencies=[can_read_runs])
def course_page(request: Request, dag_id: str, course_id: int):
    integration = _integration(request, dag_id)
    with _database(integration) as engine:
        learners = report_store.course_learners(engine, integration.key, course_id)
    if not learners:
        raise HTTPException(404, f"no linked learner in Moodle course #{course_id}")
    return _page(request, "course.html", dag_id=dag_id, integration=integration, course=learners[0],
                 learners=[{**row, "status": report_store.learner_status(row)} for row in learners])

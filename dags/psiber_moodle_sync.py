"""One DAG per integration file in include/integrations/: employees → Moodle users, Moodle courses and
results → PSIber, and ESS (offers, notifications, enrolment requests).

This file only wires tasks; the steps live in plugins/psiber/{user,course,result,ess}_sync.py (the users flow's
tasks in plugins/psiber/users_flow.py), the DAG around them in sync_common/dag_builder.py.
"""

from __future__ import annotations

from airflow.sdk import Param

from psiber.kind import KIND
from psiber.result_read_tasks import results_from_report
from psiber.source import PSIBER
from psiber.task_limits import execution_timeouts
from psiber.users_flow import users_flow_params, wire_users_flow
from sync_common.dag_builder import DagOptions, IntegrationRun, build_dags, step
from sync_common.targeted_records import skip_in_targeted_run, targeted_records


def course_learners(*args):
    """The course status a summarised run read (``psiber.course_status``), imported when a run is summarised."""
    from psiber.course_status import course_learners_of_run

    return course_learners_of_run(*args)


def options(integration) -> DagOptions:
    return DagOptions(
        schedule=integration.schedule if integration.enabled else None,
        execution_timeout=execution_timeouts(integration).step,
        paused=not integration.enabled,
        tags=("psiber", "moodle", *integration.flows),
        params={
            **users_flow_params(),
            "full_results_sync": Param(False, type="boolean",
                                       description="Read every linked user's results, not only recent changes."),
        },
        course_learners=course_learners,
    )


def wire(run: IntegrationRun) -> None:
    integration, moodle, psiber, run_dir, run_id = run.integration, run.moodle, run.database, run.run_dir, run.run_id
    flows = set(integration.flows)
    limits = execution_timeouts(integration)

    def whole_runs_only() -> None:
        skip_in_targeted_run(run.params(), "syncs the listed employees' accounts only: courses, custom fields, "
                             "results and ESS wait for the next whole run", syncs_listed="users" in flows)

    @step
    def check_moodle_site() -> dict:
        from psiber.preflight import preflight

        return preflight(integration, moodle())

    @step
    def extract_employees() -> dict:
        from psiber.targeted_extract import extract_employees_of_run

        return extract_employees_of_run(integration, psiber(), run_dir(), targeted_records(run.params()))

    @step
    def extract_moodle_courses() -> dict:
        from psiber import course_sync

        whole_runs_only()
        return course_sync.extract_moodle_courses(moodle(), run_dir())

    @step
    def plan_course_changes() -> dict:
        from psiber import course_sync

        return course_sync.plan_courses(integration, psiber(), run_dir())

    @step
    def discover_custom_fields() -> dict:
        from psiber import field_discovery

        whole_runs_only()
        return field_discovery.discover_custom_fields(integration, moodle(), run_dir())

    @step
    def load_courses() -> dict:
        from psiber import course_sync
        from sync_common.write_lock import integration_write_lock

        engine = psiber()
        with integration_write_lock(engine, integration.key, run_id()):
            return course_sync.load_courses(integration, engine, run_dir())

    @step(execution_timeout=limits.population)
    def find_changed_learners() -> dict:
        from psiber import result_sync

        whole_runs_only()
        return result_sync.find_changed_learners(integration, moodle(), psiber(), run_dir(),
                                                 bool(run.params()["full_results_sync"]))

    @step(trigger_rule="none_failed")  # also after no completion to read (results from a report)
    def plan_grade_reads() -> list[list[int]]:
        from psiber import result_sync

        whole_runs_only()
        return result_sync.grade_read_batches(integration, run_dir())

    @step(pool=integration.results.moodle_pool or "default_pool", execution_timeout=limits.grade_reads,
          max_active_tis_per_dagrun=integration.results.max_parallel_reads)
    def read_course_grades(course_ids: list[int]) -> dict:
        from psiber import result_sync

        return result_sync.read_course_grades(moodle(), run_dir(), course_ids)

    @step(trigger_rule="none_failed")  # also after a site with no course to read grades from
    def plan_completion_reads() -> list[list[int]]:
        from psiber import result_sync

        whole_runs_only()
        return result_sync.completion_read_batches(integration, run_dir())

    @step(pool=integration.results.moodle_pool or "default_pool", execution_timeout=limits.completion_reads,
          max_active_tis_per_dagrun=integration.results.max_parallel_reads)
    def read_completions(user_ids: list[int]) -> dict:
        from psiber import result_sync

        return result_sync.read_completions(integration, moodle(), psiber(), run_dir(), user_ids)

    @step(trigger_rule="none_failed")  # also when no user was active since the last run
    def plan_result_changes() -> dict:
        from psiber import result_sync

        whole_runs_only()
        return result_sync.plan_result_changes(integration, psiber(), run_dir())

    @step
    def load_results() -> dict:
        from psiber import result_sync
        from sync_common.write_lock import integration_write_lock

        engine = psiber()
        with integration_write_lock(engine, integration.key, run_id()):
            return result_sync.load_results(integration, engine, run_dir())

    @step(execution_timeout=limits.population)
    def refresh_ess_offers() -> dict:
        from psiber import ess_sync

        whole_runs_only()
        return ess_sync.refresh_ess_offers(integration, psiber(), run_dir(), run_id())

    @step(execution_timeout=limits.population)
    def read_ess_assessments() -> dict:
        from psiber import ess_sync

        return ess_sync.read_ess_assessments(integration, moodle(), psiber(), run_dir())

    @step
    def notify_ess_assessments() -> dict:
        from psiber import ess_sync

        return ess_sync.notify_ess_assessments(integration, psiber(), run_dir(), run_id())

    @step(execution_timeout=limits.population)
    def enrol_ess_requests() -> dict:
        from psiber import ess_sync

        return ess_sync.enrol_ess_requests(integration, moodle(), psiber(), run_dir(), run_id())

    @step(trigger_rule="all_done_min_one_success")  # writes back what an interrupted enrolment did in Moodle
    def record_ess_requests() -> dict:
        from psiber import ess_sync

        return ess_sync.record_ess_requests(integration, psiber(), run_dir(), run_id())

    checked = check_moodle_site()
    results_wait_for = []
    if "users" in flows:
        results_wait_for.append(wire_users_flow(run, PSIBER, checked, extract_employees()))
    if "courses" in flows:
        courses = checked >> extract_moodle_courses()
        results_wait_for.append(courses >> plan_course_changes() >> load_courses())
        results_wait_for.append(courses >> discover_custom_fields())
    else:
        results_wait_for.append(checked >> discover_custom_fields())
    if "results" in flows:
        learners = find_changed_learners()
        results_wait_for >> learners
        batches, user_batches = plan_grade_reads(), plan_completion_reads()
        grades = read_course_grades.expand(course_ids=batches)
        completions = read_completions.expand(user_ids=user_batches)
        if results_from_report(integration):  # completions first: grades only for the courses they name
            learners >> user_batches
            completions >> batches
            grades >> plan_result_changes() >> load_results()
        else:  # grades first: who was graded lately has completions read too
            learners >> batches
            grades >> user_batches
            completions >> plan_result_changes() >> load_results()
    if "ess" in flows:  # after the users flow's links and the courses flow's read of Moodle; assessments
        offers = refresh_ess_offers()  # are read once the requests are enrolled, so new students hear of them
        results_wait_for >> offers
        [offers, offers >> enrol_ess_requests()] >> record_ess_requests() >> read_ess_assessments() \
            >> notify_ess_assessments()


build_dags(KIND, options, wire, globals())

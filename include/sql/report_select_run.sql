SELECT run_id, dag_id, started_at, finished_at, complete, moodle_calls, outcomes, problems, preview,
       targeted
  FROM sync_report_run
 WHERE integration_name = :integration_name AND run_id = :run_id

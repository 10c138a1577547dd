-- An integration's runs, newest first (the "Sync runs" page and the navigation's last run).
SELECT run_id, dag_id, started_at, finished_at, complete, moodle_calls, outcomes, problems, preview,
       targeted
  FROM sync_report_run
 WHERE integration_name = :integration_name
 ORDER BY finished_at DESC, run_id DESC
 LIMIT :limit

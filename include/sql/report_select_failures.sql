-- Why the tasks of each try of a run failed: what went wrong, who must act, what to do.
SELECT try_number, task, task_id, map_index, error, detail, owner, next_step, transient, failed_at
  FROM sync_report_failure
 WHERE integration_name = :integration_name AND run_id = :run_id
 ORDER BY try_number, task

SELECT task_id, map_index, state, duration
  FROM sync_report_task
 WHERE integration_name = :integration_name AND run_id = :run_id
 ORDER BY task_id, map_index

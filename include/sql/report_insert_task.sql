INSERT INTO sync_report_task (integration_name, run_id, task_id, map_index, state, duration)
VALUES (:integration_name, :run_id, :task_id, :map_index, :state, :duration)

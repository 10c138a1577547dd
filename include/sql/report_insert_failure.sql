INSERT INTO sync_report_failure (integration_name, run_id, try_number, task, task_id, map_index, error, detail, owner,
                                 next_step, transient, failed_at)
VALUES (:integration_name, :run_id, :try_number, :task, :task_id, :map_index, :error, :detail, :owner, :next_step,
        :transient, :failed_at)

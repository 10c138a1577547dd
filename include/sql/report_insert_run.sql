INSERT INTO sync_report_run (integration_name, run_id, dag_id, started_at, finished_at, complete, moodle_calls,
                             outcomes, problems, preview, targeted)
VALUES (:integration_name, :run_id, :dag_id, :started_at, :finished_at, :complete, :moodle_calls,
        :outcomes, :problems, :preview, :targeted)

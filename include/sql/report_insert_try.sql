INSERT INTO sync_report_try (integration_name, run_id, try_number, started_at, finished_at, state)
VALUES (:integration_name, :run_id, :try_number, :started_at, :finished_at, :state)

-- Every try of a run, first first (a run cleared after it failed has two or more).
SELECT try_number, started_at, finished_at, state
  FROM sync_report_try
 WHERE integration_name = :integration_name AND run_id = :run_id
 ORDER BY try_number

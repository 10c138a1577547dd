-- Who has records to look at in a run (the owner filter's choices).
SELECT DISTINCT owner
  FROM sync_report_outcome
 WHERE integration_name = :integration_name AND run_id = :run_id AND owner <> ''
 ORDER BY owner

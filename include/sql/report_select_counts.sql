-- Counts per flow and action of the given runs, in display order.
SELECT run_id, flow, action, records
  FROM sync_report_count
 WHERE integration_name = :integration_name AND run_id IN :run_ids
 ORDER BY run_id, position

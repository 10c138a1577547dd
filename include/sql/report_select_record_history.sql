-- One record's outcome in every kept run of an integration, newest run first: the record itself ('EE00013') and
-- the records named after it ('EE00013 / DRV-101', 'S-2001 in SUB-8-MATH'), whatever the case typed.
SELECT o.run_id, r.started_at, r.finished_at, r.preview, o.flow, o.record, o.name, o.action, o.problem, o.reason,
       o.owner, o.changed_fields
  FROM sync_report_outcome o
  JOIN sync_report_run r ON r.integration_name = o.integration_name AND r.run_id = o.run_id
 WHERE o.integration_name = :integration_name
   AND (LOWER(o.record) = :record OR LOWER(o.record) LIKE :named_after ESCAPE '\')
 ORDER BY r.finished_at DESC, o.run_id DESC, o.position
 LIMIT :limit

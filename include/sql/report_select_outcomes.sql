-- One run's record-level outcomes, problems first, then what a preview would write (in its order), filtered by
-- flow / action / owner ('' = any; an owner matches a record it owns alone or with others, "A / B") and by a text
-- in the record or the name beside it (employee number, course code, surname; search '' for any);
-- "matching" counts every row the filters match, beyond the page.
SELECT position, flow, action, problem, record, name, reason, owner, changed_fields, COUNT(*) OVER () AS matching
  FROM sync_report_outcome
 WHERE integration_name = :integration_name AND run_id = :run_id
   AND (:flow = '' OR flow = :flow)
   AND (:action = '' OR action = :action)
   AND (:owner = '' OR owner = :owner OR owner LIKE :owner_first ESCAPE '\' OR owner LIKE :owner_last ESCAPE '\'
        OR owner LIKE :owner_inside ESCAPE '\')
   AND (:search = '' OR LOWER(COALESCE(record, '')) LIKE :pattern ESCAPE '\' OR LOWER(name) LIKE :pattern ESCAPE '\')
 ORDER BY problem DESC, CASE WHEN action LIKE 'would\_%' ESCAPE '\' THEN 0 ELSE 1 END, position
 LIMIT :limit OFFSET :offset

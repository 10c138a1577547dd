-- The links of some employees (those a step is about to write), as they are stored.
SELECT employee_id, moodle_user_id, moodle_username, synced_fingerprint, source_fingerprint
  FROM moodle_user_link
 WHERE integration_name = :integration_name
   AND employee_id IN :employee_ids

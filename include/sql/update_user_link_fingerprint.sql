-- What Moodle holds of a linked employee, as last confirmed, and the source row it was synced from (NULL: to be
-- read again on the next night).
UPDATE moodle_user_link SET synced_fingerprint = :synced_fingerprint, source_fingerprint = :source_fingerprint
 WHERE integration_name = :integration_name AND employee_id = :employee_id

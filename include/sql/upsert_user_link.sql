-- Record (or move) the link between an employee and their Moodle user; an unchanged link is left as is. A link
-- moved to another account forgets what the old one was confirmed to hold.
INSERT INTO moodle_user_link (integration_name, employee_id, moodle_user_id, moodle_username, linked_at)
VALUES (:integration_name, :employee_id, :moodle_user_id, :moodle_username, :linked_at)
ON CONFLICT (integration_name, employee_id) DO UPDATE
   SET moodle_user_id = excluded.moodle_user_id,
       moodle_username = excluded.moodle_username,
       linked_at = excluded.linked_at,
       synced_fingerprint = CASE WHEN moodle_user_link.moodle_user_id = excluded.moodle_user_id
                                 THEN moodle_user_link.synced_fingerprint END,
       source_fingerprint = CASE WHEN moodle_user_link.moodle_user_id = excluded.moodle_user_id
                                 THEN moodle_user_link.source_fingerprint END
 WHERE moodle_user_link.moodle_user_id <> excluded.moodle_user_id
    OR moodle_user_link.moodle_username <> excluded.moodle_username

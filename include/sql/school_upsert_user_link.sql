INSERT INTO school_moodle_user_link (integration_name, external_id, moodle_user_id, linked_at)
VALUES (:integration_name, :external_id, :moodle_user_id, :linked_at)
ON CONFLICT (integration_name, external_id) DO UPDATE
   SET moodle_user_id = excluded.moodle_user_id,
       linked_at = excluded.linked_at
 WHERE school_moodle_user_link.moodle_user_id <> excluded.moodle_user_id

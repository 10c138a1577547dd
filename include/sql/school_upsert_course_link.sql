INSERT INTO school_moodle_course_link (integration_name, class_external_id, moodle_course_id, linked_at)
VALUES (:integration_name, :class_external_id, :moodle_course_id, :linked_at)
ON CONFLICT (integration_name, class_external_id) DO UPDATE
   SET moodle_course_id = excluded.moodle_course_id,
       linked_at = excluded.linked_at
 WHERE school_moodle_course_link.moodle_course_id <> excluded.moodle_course_id

INSERT INTO sync_course (integration_name, moodle_course_id, course_code, course_name, not_counted, run_id, read_at)
VALUES (:integration_name, :moodle_course_id, :course_code, :course_name, :not_counted, :run_id, :read_at)

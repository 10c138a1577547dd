INSERT INTO ess_wanted_course (moodle_course_id, course_code, course_name, notification_key, notification_kind,
                               notification_text)
VALUES (:moodle_course_id, :course_code, :course_name, :notification_key, :notification_kind, :notification_text)

-- One notification; the same key for the same employee is never written twice (re-runs, retries).
INSERT INTO ess_notification (integration_name, employee_id, notification_key, kind, moodle_course_id, course_code,
                              assessment, text, created_at, is_read)
VALUES (:integration_name, :employee_id, :notification_key, :kind, :moodle_course_id, :course_code, :assessment,
        :text, :now, 0)
ON CONFLICT (integration_name, employee_id, notification_key) DO NOTHING

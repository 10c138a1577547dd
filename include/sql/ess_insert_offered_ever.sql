-- One course of a set of courses ever offered; a set never changes, so one already held is left as it is.
INSERT INTO ess_offered_ever (integration_name, course_set, moodle_course_id)
VALUES (:integration_name, :course_set, :moodle_course_id)
ON CONFLICT (integration_name, course_set, moodle_course_id) DO NOTHING

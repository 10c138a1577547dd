-- One course of an offer group; a group never changes, so one already held is left as it is.
INSERT INTO ess_offer_group (integration_name, offer_group, moodle_course_id, course_code, course_name)
VALUES (:integration_name, :offer_group, :moodle_course_id, :course_code, :course_name)
ON CONFLICT (integration_name, offer_group, moodle_course_id) DO NOTHING

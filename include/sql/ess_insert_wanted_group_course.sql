INSERT INTO ess_wanted_group_course (offer_group, moodle_course_id) VALUES (:offer_group, :moodle_course_id)

SELECT class_external_id, moodle_course_id FROM school_moodle_course_link WHERE integration_name = :integration_name

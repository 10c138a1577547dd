DELETE FROM school_moodle_course_link WHERE integration_name = :integration_name AND class_external_id = :class_external_id

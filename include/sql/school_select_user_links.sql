SELECT external_id, moodle_user_id FROM school_moodle_user_link WHERE integration_name = :integration_name

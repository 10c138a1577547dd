-- A Moodle user deleted by the sync: Moodle empties its ID number, so the link is gone too.
DELETE FROM school_moodle_user_link WHERE integration_name = :integration_name AND external_id = :external_id

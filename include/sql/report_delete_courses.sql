-- The courses a run read replace those an earlier run read (a course gone from Moodle leaves the list).
DELETE FROM sync_course WHERE integration_name = :integration_name

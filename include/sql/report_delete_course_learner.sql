-- A learner no longer enrolled (the course's grade report no longer lists them).
DELETE FROM sync_course_learner
 WHERE integration_name = :integration_name AND moodle_course_id = :moodle_course_id
   AND moodle_user_id = :moodle_user_id

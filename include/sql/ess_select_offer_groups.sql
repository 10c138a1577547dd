-- The courses of the named offer groups that PSIber holds.
SELECT offer_group, moodle_course_id, course_code, course_name
  FROM ess_offer_group
 WHERE integration_name = :integration_name AND offer_group IN :offer_groups

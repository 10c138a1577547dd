-- Per user of the stored learner rows: employee number and name as stored (MIN differs from MAX when rows disagree).
SELECT moodle_user_id, MIN(employee_number) AS min_number, MAX(employee_number) AS max_number,
       MIN(learner_name) AS min_name, MAX(learner_name) AS max_name
  FROM sync_course_learner
 WHERE integration_name = :integration_name
 GROUP BY moodle_user_id

-- Per course of the stored learner rows: its code and name as stored (MIN differs from MAX when its rows disagree).
SELECT moodle_course_id, MIN(course_code) AS min_code, MAX(course_code) AS max_code,
       MIN(course_name) AS min_name, MAX(course_name) AS max_name
  FROM sync_course_learner
 WHERE integration_name = :integration_name
 GROUP BY moodle_course_id

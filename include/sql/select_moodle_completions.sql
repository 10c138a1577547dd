-- Employee/course pairs whose Moodle completion PSIber already holds (their completion time need not be read again).
SELECT c.employee_id, k.moodle_course_id
  FROM course_completion c
  JOIN course k ON k.course_code = c.course_code
 WHERE c.source = 'moodle' AND k.integration_name = :integration_name

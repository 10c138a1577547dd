-- Which of these employees' course completions PSIber already holds from Moodle (their completion time need not be
-- read again); asked for one batch of learners at a time, never for the whole population.
SELECT c.employee_id, k.moodle_course_id
  FROM course_completion c
  JOIN course k ON k.course_code = c.course_code
 WHERE c.source = 'moodle' AND k.integration_name = :integration_name AND c.employee_id IN :employee_ids

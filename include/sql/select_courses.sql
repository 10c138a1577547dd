-- Every PSIber course (hand-made and synced), to plan against.
SELECT course_code, description, category, status, start_date, saqa_id, nqf_recognised, min_pass_rate,
       nqf_level, course_level, source, integration_name, moodle_course_id
  FROM course
 ORDER BY course_code

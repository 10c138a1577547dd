-- Create or refresh a course copied from Moodle; a hand-made PSIber course with the same code is never changed.
INSERT INTO course (course_code, description, category, status, start_date, saqa_id, nqf_recognised,
                    min_pass_rate, nqf_level, course_level, source, integration_name, moodle_course_id, updated_at)
VALUES (:course_code, :description, :category, :status, :start_date, :saqa_id, :nqf_recognised,
        :min_pass_rate, :nqf_level, :course_level, 'moodle', :integration_name, :moodle_course_id, :updated_at)
ON CONFLICT (course_code) DO UPDATE
   SET description = excluded.description,
       category = excluded.category,
       status = excluded.status,
       start_date = excluded.start_date,
       saqa_id = excluded.saqa_id,
       nqf_recognised = excluded.nqf_recognised,
       min_pass_rate = excluded.min_pass_rate,
       nqf_level = excluded.nqf_level,
       course_level = excluded.course_level,
       moodle_course_id = excluded.moodle_course_id,
       updated_at = excluded.updated_at
 WHERE course.source = 'moodle' AND course.integration_name = excluded.integration_name

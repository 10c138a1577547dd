-- Remember an assignment or quiz and its due date.
INSERT INTO ess_assessment (integration_name, modname, instance_id, moodle_course_id, name, due_at, first_seen_at,
                            updated_at)
VALUES (:integration_name, :modname, :instance_id, :moodle_course_id, :name, :due_at, :now, :now)
ON CONFLICT (integration_name, modname, instance_id) DO UPDATE
   SET moodle_course_id = excluded.moodle_course_id,
       name = excluded.name,
       due_at = excluded.due_at,
       updated_at = excluded.updated_at

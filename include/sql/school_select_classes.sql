-- Every class of the MIS with what decides whether it becomes a Moodle course.
SELECT external_id, code, name, group_type, sms_controlled, provisioning_override, academic_year
  FROM school_class
 ORDER BY external_id

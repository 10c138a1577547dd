-- Every teacher and student of the MIS, leavers included (their Moodle accounts are suspended or deleted).
SELECT external_id, role, first_name, last_name, email, username, status
  FROM school_person
 ORDER BY external_id

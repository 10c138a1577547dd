-- Every class membership: a person in a class as student or teacher.
SELECT person_external_id, class_external_id, role
  FROM school_membership
 ORDER BY class_external_id, person_external_id

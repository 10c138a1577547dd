INSERT INTO school_membership (person_external_id, class_external_id, role)
VALUES (:person_external_id, :class_external_id, :role)

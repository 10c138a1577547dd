-- Rollover in the MIS: the memberships of an academic year's classes go with them.
DELETE FROM school_membership
 WHERE class_external_id IN (SELECT external_id FROM school_class WHERE academic_year = :academic_year)

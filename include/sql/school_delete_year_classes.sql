-- Rollover in the MIS: an academic year's classes are replaced by the next year's.
DELETE FROM school_class WHERE academic_year = :academic_year

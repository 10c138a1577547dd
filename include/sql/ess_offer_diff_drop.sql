-- The temporary tables of ess_offer_diff_tables.sql: dropped after a refresh, and before one (on SQLite a
-- failed refresh leaves them on its connection). Statements are separated by ";" at line end.
DROP TABLE IF EXISTS ess_offer_change;
DROP TABLE IF EXISTS ess_wanted_employee;
DROP TABLE IF EXISTS ess_compared_employee;
DROP TABLE IF EXISTS ess_wanted_group_course;
DROP TABLE IF EXISTS ess_wanted_course;

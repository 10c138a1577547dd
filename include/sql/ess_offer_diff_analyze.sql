-- Statistics of the filled tables of ess_offer_diff_tables.sql: PostgreSQL's autovacuum never analyses
-- temporary tables, and without statistics it joins them to the offers in nested loops (seconds instead of
-- a fraction of one at 750,000 offers). Statements are separated by ";" at line end.
ANALYZE ess_wanted_course;
ANALYZE ess_wanted_group_course;
ANALYZE ess_wanted_employee;
ANALYZE ess_compared_employee;

-- A link table made before links remembered what Moodle last confirmed of the employee.
ALTER TABLE moodle_user_link ADD COLUMN synced_fingerprint VARCHAR(64)

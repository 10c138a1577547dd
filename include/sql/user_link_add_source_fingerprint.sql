-- A link table made before links remembered the source row an account was synced from.
ALTER TABLE moodle_user_link ADD COLUMN source_fingerprint VARCHAR(64)

-- A record Moodle took (or that no longer needs a write) leaves the refused list.
DELETE FROM school_moodle_refusal WHERE integration_name = :integration_name AND kind = :kind AND external_id = :external_id

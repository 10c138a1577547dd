-- A record Moodle took (or that no longer needs a write) leaves the refused list.
DELETE FROM moodle_refusal WHERE integration_name = :integration_name AND employee_id = :employee_id

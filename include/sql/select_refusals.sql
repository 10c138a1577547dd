-- Records Moodle refused for this integration, and why.
SELECT employee_id, fingerprint, reason, owner, first_refused_at, last_refused_at
  FROM moodle_refusal
 WHERE integration_name = :integration_name
 ORDER BY employee_id

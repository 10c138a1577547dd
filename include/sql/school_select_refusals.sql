-- MIS records of one kind Moodle refused for this integration, and why.
SELECT external_id AS record_key, fingerprint, reason, owner, first_refused_at, last_refused_at
  FROM school_moodle_refusal
 WHERE integration_name = :integration_name AND kind = :kind
 ORDER BY external_id

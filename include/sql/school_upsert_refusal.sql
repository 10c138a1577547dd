-- Remember (or refresh) a refused MIS record; the first refusal's time is kept while what was sent stays the same.
INSERT INTO school_moodle_refusal (integration_name, kind, external_id, fingerprint, reason, owner, first_refused_at,
                                   last_refused_at)
VALUES (:integration_name, :kind, :external_id, :fingerprint, :reason, :owner, :refused_at, :refused_at)
ON CONFLICT (integration_name, kind, external_id) DO UPDATE
   SET reason = excluded.reason,
       owner = excluded.owner,
       first_refused_at = CASE WHEN school_moodle_refusal.fingerprint = excluded.fingerprint
                               THEN school_moodle_refusal.first_refused_at ELSE excluded.first_refused_at END,
       fingerprint = excluded.fingerprint,
       last_refused_at = excluded.last_refused_at

-- Take the integration's write lock if it is free, expired, or already this holder's (a retried task).
-- Affects one row when taken, none when another holder has it.
INSERT INTO integration_write_lock (integration_name, holder, acquired_at, expires_at)
VALUES (:integration_name, :holder, :now, :expires_at)
ON CONFLICT (integration_name) DO UPDATE
   SET holder = excluded.holder,
       acquired_at = excluded.acquired_at,
       expires_at = excluded.expires_at
 WHERE integration_write_lock.holder = excluded.holder
    OR integration_write_lock.expires_at < excluded.acquired_at

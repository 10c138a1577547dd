SELECT holder, acquired_at, expires_at FROM integration_write_lock WHERE integration_name = :integration_name

DELETE FROM integration_write_lock WHERE integration_name = :integration_name AND holder = :holder

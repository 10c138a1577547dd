-- The write lock of integrations whose data lives in this database (sync_common/write_lock.py): one run at a
-- time writes for an integration. Portable DDL (SQLite and PostgreSQL).
CREATE TABLE IF NOT EXISTS integration_write_lock (
    integration_name VARCHAR(80)  PRIMARY KEY,
    holder           VARCHAR(250) NOT NULL,
    acquired_at      TIMESTAMP    NOT NULL,
    expires_at       TIMESTAMP    NOT NULL
);

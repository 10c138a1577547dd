-- PSIber tables read and written by the Moodle integration.
-- Portable DDL: runs unchanged on SQLite and PostgreSQL. Statements are separated by ";" at line end.

CREATE TABLE IF NOT EXISTS payroll (
    payroll_code    VARCHAR(40)  PRIMARY KEY,
    payroll_name    VARCHAR(120) NOT NULL,
    uif_ref         VARCHAR(40),
    sdl_ref         VARCHAR(40)
);

CREATE TABLE IF NOT EXISTS picklist_item (
    picklist        VARCHAR(40)  NOT NULL,
    item_value      VARCHAR(120) NOT NULL,
    PRIMARY KEY (picklist, item_value)
);

CREATE TABLE IF NOT EXISTS employee (
    employee_id       INTEGER      PRIMARY KEY,
    employee_number   VARCHAR(40)  NOT NULL,
    payroll_code      VARCHAR(40)  NOT NULL REFERENCES payroll (payroll_code),
    first_name        VARCHAR(120),
    surname           VARCHAR(120),
    email             VARCHAR(254),
    id_number         VARCHAR(40),
    passport_number   VARCHAR(40),
    employment_status VARCHAR(40)  NOT NULL,
    employment_type   VARCHAR(60),
    gender            VARCHAR(40),
    disability        VARCHAR(40),
    engaged_on        DATE,
    terminated_on     DATE
);

CREATE INDEX IF NOT EXISTS employee_payroll_idx ON employee (payroll_code);

CREATE TABLE IF NOT EXISTS moodle_user_link (
    integration_name VARCHAR(80)  NOT NULL,
    employee_id      INTEGER      NOT NULL REFERENCES employee (employee_id),
    moodle_user_id   INTEGER      NOT NULL,
    moodle_username  VARCHAR(254) NOT NULL,
    linked_at        TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, employee_id)
);

CREATE UNIQUE INDEX IF NOT EXISTS moodle_user_link_user_idx ON moodle_user_link (integration_name, moodle_user_id);

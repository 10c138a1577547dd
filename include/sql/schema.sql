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
    item_value      VARCHAR(255) NOT NULL,
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
    synced_fingerprint VARCHAR(64),  -- the employee as Moodle last confirmed it (user_plan.synced_fingerprint)
    source_fingerprint VARCHAR(64),  -- the source row that account was synced from (user_plan.source_fingerprints)
    PRIMARY KEY (integration_name, employee_id)
);

CREATE UNIQUE INDEX IF NOT EXISTS moodle_user_link_user_idx ON moodle_user_link (integration_name, moodle_user_id);

CREATE TABLE IF NOT EXISTS course (
    course_code      VARCHAR(255) PRIMARY KEY,
    description      VARCHAR(255) NOT NULL,
    category         VARCHAR(255),
    status           VARCHAR(10)  NOT NULL,
    start_date       DATE,
    saqa_id          VARCHAR(255),
    nqf_recognised   INTEGER,
    min_pass_rate    NUMERIC(5, 2),
    nqf_level        VARCHAR(40),
    course_level     VARCHAR(40),
    source           VARCHAR(10)  NOT NULL,
    integration_name VARCHAR(80),
    moodle_course_id INTEGER,
    updated_at       TIMESTAMP    NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS course_moodle_idx ON course (integration_name, moodle_course_id);

CREATE TABLE IF NOT EXISTS course_completion (
    employee_id  INTEGER      NOT NULL REFERENCES employee (employee_id),
    course_code  VARCHAR(255) NOT NULL REFERENCES course (course_code),
    completed_on DATE         NOT NULL,
    result       VARCHAR(120) NOT NULL,
    source       VARCHAR(10)  NOT NULL,
    updated_at   TIMESTAMP    NOT NULL,
    PRIMARY KEY (employee_id, course_code)
);

CREATE TABLE IF NOT EXISTS course_attempt (
    attempt_key  VARCHAR(200) PRIMARY KEY,
    employee_id  INTEGER      NOT NULL REFERENCES employee (employee_id),
    course_code  VARCHAR(255) NOT NULL REFERENCES course (course_code),
    attempt_date DATE         NOT NULL,
    result       VARCHAR(120) NOT NULL,
    grade        NUMERIC(7, 2),
    source       VARCHAR(10)  NOT NULL,
    recorded_at  TIMESTAMP    NOT NULL
);

CREATE INDEX IF NOT EXISTS course_attempt_employee_idx ON course_attempt (employee_id, course_code);

CREATE TABLE IF NOT EXISTS sync_watermark (
    integration_name VARCHAR(80) NOT NULL,
    flow             VARCHAR(20) NOT NULL,
    synced_until     BIGINT      NOT NULL,
    PRIMARY KEY (integration_name, flow)
);

-- Records Moodle refused, so that they are not sent again, night after night, until they change.
-- fingerprint: a hash of what was sent (never the password); reason and owner as reported.
CREATE TABLE IF NOT EXISTS moodle_refusal (
    integration_name VARCHAR(80)  NOT NULL,
    employee_id      INTEGER      NOT NULL,
    fingerprint      VARCHAR(64)  NOT NULL,
    reason           VARCHAR(2000) NOT NULL,
    owner            VARCHAR(200) NOT NULL,
    first_refused_at TIMESTAMP    NOT NULL,
    last_refused_at  TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, employee_id)
);

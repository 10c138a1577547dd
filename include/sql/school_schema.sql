-- The school MIS tables the Moodle provisioning reads (people, classes, memberships), and the links it keeps
-- between MIS records and Moodle (users, courses). Portable DDL: runs unchanged on SQLite and PostgreSQL.
-- Statements are separated by ";" at line end.

CREATE TABLE IF NOT EXISTS school_person (
    external_id VARCHAR(100) PRIMARY KEY,
    role        VARCHAR(20)  NOT NULL,
    first_name  VARCHAR(120),
    last_name   VARCHAR(120),
    email       VARCHAR(254),
    username    VARCHAR(120),
    status      VARCHAR(20)  NOT NULL
);

CREATE TABLE IF NOT EXISTS school_class (
    external_id           VARCHAR(100) PRIMARY KEY,
    code                  VARCHAR(100) NOT NULL,
    name                  VARCHAR(200) NOT NULL,
    group_type            VARCHAR(100) NOT NULL,
    sms_controlled        INTEGER      NOT NULL,
    provisioning_override VARCHAR(20),
    academic_year         INTEGER      NOT NULL
);

CREATE TABLE IF NOT EXISTS school_membership (
    person_external_id VARCHAR(100) NOT NULL REFERENCES school_person (external_id),
    class_external_id  VARCHAR(100) NOT NULL REFERENCES school_class (external_id),
    role               VARCHAR(20)  NOT NULL,
    PRIMARY KEY (person_external_id, class_external_id)
);

CREATE INDEX IF NOT EXISTS school_membership_class_idx ON school_membership (class_external_id);

CREATE TABLE IF NOT EXISTS school_moodle_user_link (
    integration_name VARCHAR(80)  NOT NULL,
    external_id      VARCHAR(100) NOT NULL,
    moodle_user_id   INTEGER      NOT NULL,
    linked_at        TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, external_id)
);

CREATE TABLE IF NOT EXISTS school_moodle_course_link (
    integration_name  VARCHAR(80)  NOT NULL,
    class_external_id VARCHAR(100) NOT NULL,
    moodle_course_id  INTEGER      NOT NULL,
    linked_at         TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, class_external_id)
);

-- MIS records Moodle refused (kind 'user' or 'course'), so that they are not sent again, night after night, until
-- they change. fingerprint: a hash of what was sent; reason and owner as reported.
CREATE TABLE IF NOT EXISTS school_moodle_refusal (
    integration_name VARCHAR(80)   NOT NULL,
    kind             VARCHAR(10)   NOT NULL,
    external_id      VARCHAR(100)  NOT NULL,
    fingerprint      VARCHAR(64)   NOT NULL,
    reason           VARCHAR(2000) NOT NULL,
    owner            VARCHAR(200)  NOT NULL,
    first_refused_at TIMESTAMP     NOT NULL,
    last_refused_at  TIMESTAMP     NOT NULL,
    PRIMARY KEY (integration_name, kind, external_id)
);

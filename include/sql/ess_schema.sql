-- Employee Self Service (SPEC F8): what ESS shows each employee, what it tells them, what they ask for.
-- Filled and read by the integration's 'ess' flow; ESS itself reads offers and notifications, sets
-- is_read, and files enrolment requests (approving them first when the integration requires it).
-- Portable DDL: runs unchanged on SQLite and PostgreSQL. Statements are separated by ";" at line end.

-- The Moodle courses offered to each employee. A row stays when the offer ends (offered 0), so that
-- a course offered again (hidden and shown, a rule changed back) is never announced twice.
CREATE TABLE IF NOT EXISTS ess_offered_course (
    integration_name VARCHAR(80)  NOT NULL,
    employee_id      INTEGER      NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    course_code      VARCHAR(255) NOT NULL,
    course_name      VARCHAR(255) NOT NULL,
    offered          INTEGER      NOT NULL,
    first_offered_at TIMESTAMP    NOT NULL,
    updated_at       TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, employee_id, moodle_course_id)
);

CREATE INDEX IF NOT EXISTS ess_offered_course_employee_idx ON ess_offered_course (employee_id, offered);
-- An integration's current offers, as a refresh that compares every employee reads them.
CREATE INDEX IF NOT EXISTS ess_offered_course_current_idx ON ess_offered_course (integration_name, offered);

-- Each employee's offers as the flow last wrote them (a fingerprint of the courses, codes and names offered), so
-- that a night compares the offers of the employees whose offers change alone, not every offer. No row for an
-- integration: the next refresh compares every current offer.
CREATE TABLE IF NOT EXISTS ess_offer_fingerprint (
    integration_name VARCHAR(80) NOT NULL,
    employee_id      INTEGER     NOT NULL,
    fingerprint      VARCHAR(64) NOT NULL,
    PRIMARY KEY (integration_name, employee_id)
);

-- What ESS tells an employee. kind: new_course, new_assessment, assessment_changed, enrolment_outcome.
-- notification_key makes each notification once only, whatever re-runs.
CREATE TABLE IF NOT EXISTS ess_notification (
    integration_name VARCHAR(80)   NOT NULL,
    employee_id      INTEGER       NOT NULL,
    notification_key VARCHAR(200)  NOT NULL,
    kind             VARCHAR(30)   NOT NULL,
    moodle_course_id INTEGER       NOT NULL,
    course_code      VARCHAR(255)  NOT NULL,
    assessment       VARCHAR(255),
    text             VARCHAR(1000) NOT NULL,
    created_at       TIMESTAMP     NOT NULL,
    is_read          INTEGER       NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_name, employee_id, notification_key)
);

CREATE INDEX IF NOT EXISTS ess_notification_unread_idx ON ess_notification (employee_id, is_read);

-- Requests to enrol, filed by ESS (state 'pending'); the flow enrols them in Moodle and writes back
-- 'enrolled' or 'refused' with a reason and the time of the decision.
CREATE TABLE IF NOT EXISTS ess_enrolment_request (
    integration_name VARCHAR(80)   NOT NULL,
    employee_id      INTEGER       NOT NULL,
    moodle_course_id INTEGER       NOT NULL,
    requested_at     TIMESTAMP     NOT NULL,
    approved_at      TIMESTAMP,
    state            VARCHAR(10)   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'enrolled', 'refused')),
    reason           VARCHAR(1000),
    decided_at       TIMESTAMP,
    PRIMARY KEY (integration_name, employee_id, moodle_course_id, requested_at)
);

CREATE INDEX IF NOT EXISTS ess_enrolment_request_state_idx ON ess_enrolment_request (integration_name, state);

-- Assignments and quizzes already seen in Moodle (due_at in Unix seconds, null without a due date), so
-- that only new ones and changed due dates are announced.
CREATE TABLE IF NOT EXISTS ess_assessment (
    integration_name VARCHAR(80)  NOT NULL,
    modname          VARCHAR(20)  NOT NULL,
    instance_id      INTEGER      NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    name             VARCHAR(255) NOT NULL,
    due_at           BIGINT,
    first_seen_at    TIMESTAMP    NOT NULL,
    updated_at       TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, modname, instance_id)
);

-- Employee Self Service (SPEC F8): what ESS shows each employee, what it tells them, what they ask for.
-- Filled and read by the integration's 'ess' flow; ESS itself reads offers and notifications, sets
-- is_read, and files enrolment requests (approving them first when the integration requires it).
-- Portable DDL: runs unchanged on SQLite and PostgreSQL. Statements are separated by ";" at line end.

-- Offers are kept by group, so that they grow with employees plus courses, not with their product: employees
-- the same offer rules match are offered the same courses, a group. A group is named by the fingerprint of its
-- courses, codes and names, so it never changes: a course added, renamed or hidden makes another group. Only the
-- groups some employee holds now are kept (the flow deletes the others as it writes).
CREATE TABLE IF NOT EXISTS ess_offer_group (
    integration_name VARCHAR(80)  NOT NULL,
    offer_group      VARCHAR(64)  NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    course_code      VARCHAR(255) NOT NULL,
    course_name      VARCHAR(255) NOT NULL,
    PRIMARY KEY (integration_name, offer_group, moodle_course_id)
);

-- The Moodle course ids ever offered to an employee, as sets that employees with the same history share (named by
-- their fingerprint): a course is announced the first time it is offered to an employee, never again, so one
-- hidden and shown again, or a rule changed back, is offered again silently. Only the sets some employee holds
-- are kept.
CREATE TABLE IF NOT EXISTS ess_offered_ever (
    integration_name VARCHAR(80) NOT NULL,
    course_set       VARCHAR(64) NOT NULL,
    moodle_course_id INTEGER     NOT NULL,
    PRIMARY KEY (integration_name, course_set, moodle_course_id)
);

-- Every employee the flow has offered courses to: their group now (NULL: offered nothing now, having been
-- offered courses before) and the set of the courses ever offered to them.
CREATE TABLE IF NOT EXISTS ess_employee_offer (
    integration_name VARCHAR(80) NOT NULL,
    employee_id      INTEGER     NOT NULL,
    offer_group      VARCHAR(64),
    offered_ever     VARCHAR(64) NOT NULL,
    first_offered_at TIMESTAMP   NOT NULL,
    updated_at       TIMESTAMP   NOT NULL,
    PRIMARY KEY (integration_name, employee_id)
);

CREATE INDEX IF NOT EXISTS ess_employee_offer_group_idx ON ess_employee_offer (integration_name, offer_group);

-- What ESS shows: each employee's offered Moodle courses now, one row per employee and course.
DROP VIEW IF EXISTS ess_current_offer;
CREATE VIEW ess_current_offer AS
SELECT e.integration_name, e.employee_id, g.moodle_course_id, g.course_code, g.course_name
  FROM ess_employee_offer e
  JOIN ess_offer_group g ON g.integration_name = e.integration_name AND g.offer_group = e.offer_group;

-- Superseded by the tables above (one row per employee and course offered): their rows are not carried over, so
-- the first refresh after the change tells each employee of their offers once more.
DROP TABLE IF EXISTS ess_offered_course;
DROP TABLE IF EXISTS ess_offer_fingerprint;

-- What ESS tells an employee. kind: new_course, courses_offered (many courses at once: moodle_course_id 0 and
-- course_code ''), new_assessment, assessment_changed, enrolment_outcome.
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

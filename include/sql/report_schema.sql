-- The integration's sync reports and course status, kept in the integration's PSIber database
-- (Connection psiber_conn_id) next to the data they describe. Written by each run's summarize_run
-- task, read by the Airflow UI plugin. Portable DDL: runs unchanged on SQLite and PostgreSQL.
-- Statements are separated by ";" at line end. Personal data: employee numbers, course codes, names (no e-mail).
-- A run cleared and run again keeps each try (sync_report_try) and why its tasks failed (sync_report_failure),
-- while the other tables hold the report of its latest try.

CREATE TABLE IF NOT EXISTS sync_report_run (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    dag_id           VARCHAR(250) NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP    NOT NULL,
    complete         INTEGER      NOT NULL,
    moodle_calls     INTEGER      NOT NULL,
    outcomes         INTEGER      NOT NULL,
    problems         INTEGER      NOT NULL,
    preview          INTEGER      NOT NULL DEFAULT 0,
    targeted         TEXT         NOT NULL DEFAULT '',
    PRIMARY KEY (integration_name, run_id)
);

CREATE INDEX IF NOT EXISTS sync_report_run_finished_idx ON sync_report_run (integration_name, finished_at);

CREATE TABLE IF NOT EXISTS sync_report_count (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    flow             VARCHAR(20)  NOT NULL,
    action           VARCHAR(40)  NOT NULL,
    position         INTEGER      NOT NULL,
    records          INTEGER      NOT NULL,
    PRIMARY KEY (integration_name, run_id, flow, action)
);

CREATE TABLE IF NOT EXISTS sync_report_task (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    task_id          VARCHAR(250) NOT NULL,
    map_index        INTEGER      NOT NULL,
    state            VARCHAR(20)  NOT NULL,
    duration         NUMERIC(12, 3),
    PRIMARY KEY (integration_name, run_id, task_id, map_index)
);

CREATE TABLE IF NOT EXISTS sync_report_outcome (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    position         INTEGER      NOT NULL,
    flow             VARCHAR(20)  NOT NULL,
    action           VARCHAR(40)  NOT NULL,
    problem          INTEGER      NOT NULL,
    record           VARCHAR(300),
    reason           TEXT         NOT NULL,
    owner            VARCHAR(200) NOT NULL,
    changed_fields   VARCHAR(500) NOT NULL,
    name             VARCHAR(250) NOT NULL DEFAULT '',
    PRIMARY KEY (integration_name, run_id, position)
);

CREATE INDEX IF NOT EXISTS sync_report_outcome_problem_idx ON sync_report_outcome (integration_name, run_id, problem);

CREATE TABLE IF NOT EXISTS sync_course_learner (
    integration_name VARCHAR(80)  NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    moodle_user_id   INTEGER      NOT NULL,
    course_code      VARCHAR(255) NOT NULL,
    course_name      VARCHAR(255) NOT NULL,
    employee_number  VARCHAR(40)  NOT NULL,
    learner_name     VARCHAR(250) NOT NULL,
    completed        INTEGER      NOT NULL,
    completed_on     DATE,
    grade            NUMERIC(7, 2),
    result           VARCHAR(120),
    passed           INTEGER,
    result_on        DATE,
    run_id           VARCHAR(250) NOT NULL,
    updated_at       TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, moodle_course_id, moodle_user_id)
);

CREATE TABLE IF NOT EXISTS sync_report_try (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    try_number       INTEGER      NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP    NOT NULL,
    state            VARCHAR(20)  NOT NULL,
    PRIMARY KEY (integration_name, run_id, try_number)
);

CREATE TABLE IF NOT EXISTS sync_report_failure (
    integration_name VARCHAR(80)  NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    try_number       INTEGER      NOT NULL,
    task             VARCHAR(260) NOT NULL,
    task_id          VARCHAR(250) NOT NULL,
    map_index        INTEGER      NOT NULL,
    error            VARCHAR(200) NOT NULL,
    detail           TEXT         NOT NULL,
    owner            VARCHAR(200) NOT NULL,
    next_step        TEXT         NOT NULL,
    transient        INTEGER      NOT NULL,
    failed_at        TIMESTAMP,
    PRIMARY KEY (integration_name, run_id, try_number, task)
);

-- Every course the latest run that read results saw (its learners are in sync_course_learner), with why its
-- learners are not counted in the course status' totals ('' when they are) and when it was read.
CREATE TABLE IF NOT EXISTS sync_course (
    integration_name VARCHAR(80)  NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    course_code      VARCHAR(255) NOT NULL,
    course_name      VARCHAR(255) NOT NULL,
    not_counted      VARCHAR(300) NOT NULL,
    run_id           VARCHAR(250) NOT NULL,
    read_at          TIMESTAMP    NOT NULL,
    PRIMARY KEY (integration_name, moodle_course_id)
)

-- This run's offers, as compact as the offer rules make them, and how they differ from ess_offered_course:
-- temporary tables of the connection that refreshes the offers (ess_db.refresh_offers), dropped at its end
-- (ess_offer_diff_drop.sql). Statements are separated by ";" at line end.

-- Every course offered to someone, with the notification that announces it to an employee.
CREATE TEMPORARY TABLE ess_wanted_course (
    moodle_course_id  INTEGER       NOT NULL PRIMARY KEY,
    course_code       VARCHAR(255)  NOT NULL,
    course_name       VARCHAR(255)  NOT NULL,
    notification_key  VARCHAR(200)  NOT NULL,
    notification_kind VARCHAR(30)   NOT NULL,
    notification_text VARCHAR(1000) NOT NULL
);

-- The courses of each group: employees the same rules match are offered the same courses.
CREATE TEMPORARY TABLE ess_wanted_group_course (
    offer_group      INTEGER NOT NULL,
    moodle_course_id INTEGER NOT NULL,
    PRIMARY KEY (offer_group, moodle_course_id)
);

-- The employees whose offers are compared: those whose offers change (ess_offer_fingerprint), in scope or not.
CREATE TEMPORARY TABLE ess_compared_employee (
    employee_id INTEGER NOT NULL PRIMARY KEY
);

-- The compared employees in scope (active) and their group (that of no course when no rule matches them).
CREATE TEMPORARY TABLE ess_wanted_employee (
    employee_id INTEGER NOT NULL PRIMARY KEY,
    offer_group INTEGER NOT NULL
);

-- The offers that change: offered (first time), offered_again, renamed (silently), withdrawn. course_code is
-- the new one, or the stored one of a withdrawn offer.
CREATE TEMPORARY TABLE ess_offer_change (
    employee_id      INTEGER      NOT NULL,
    moodle_course_id INTEGER      NOT NULL,
    offer_change     VARCHAR(20)  NOT NULL,
    course_code      VARCHAR(255) NOT NULL,
    PRIMARY KEY (employee_id, moodle_course_id)
);

-- Which of these attempts PSIber already holds (a result synced again adds nothing).
SELECT attempt_key FROM course_attempt WHERE attempt_key IN :attempt_keys

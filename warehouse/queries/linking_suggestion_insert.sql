-- where a suggested row came from. Params: row_id, review_id, record_id, record_version, outcome_title,
-- outcome_type, time_frame, units, param_type, group_id, group_title, ci_level, problems, created_at.
INSERT INTO registry_suggestions (row_id, review_id, record_id, record_version, outcome_title, outcome_type, time_frame, units, param_type, group_id, group_title, ci_level, problems, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

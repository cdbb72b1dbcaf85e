-- a suggested extraction row from posted registry results. Params: review_id, study_id, outcome_id, arm,
-- group_label, events, total, mean, sd, n, estimate, se, ci_lower, ci_upper, scale, extractor, extracted_on,
-- source_ref, import_key, notes, created_at.
INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, group_label, events, total, mean, sd, n, estimate, se, ci_lower, ci_upper, scale, extractor, extracted_on, source_ref, origin, status, import_key, notes, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'registry', 'suggested', ?, ?, ?)
RETURNING row_id

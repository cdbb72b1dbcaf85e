-- a person's link decision (append-only). Params: review_id, record_id, action, study_id, decided_by,
-- decided_at, note.
INSERT INTO study_link_decisions (review_id, record_id, action, study_id, decided_by, decided_at, note)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING decision_id

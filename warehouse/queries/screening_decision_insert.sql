-- one person's decision (append-only). Params: review_id, record_id, record_version, reviewer, decided_at,
-- stage, decision, reason, origin, recorded_at, import_key (the idempotency key of a web form, else NULL).
INSERT INTO screening_decisions (review_id, record_id, record_version, reviewer, decided_at, stage, decision, reason, origin, recorded_at, import_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING decision_id

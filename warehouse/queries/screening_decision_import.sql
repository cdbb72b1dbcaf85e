-- an imported decision (append-only, with its import key). Params: review_id, record_id, record_version,
-- reviewer, decided_at, stage, decision, reason, origin, import_key, recorded_at.
INSERT INTO screening_decisions (review_id, record_id, record_version, reviewer, decided_at, stage, decision, reason, origin, import_key, recorded_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

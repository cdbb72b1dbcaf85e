-- an old study id now pointing at the study it became. Params: review_id, alias, study_id, created_at, reason.
INSERT INTO study_aliases
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (review_id, alias)
DO UPDATE SET study_id = excluded.study_id, reason = excluded.reason

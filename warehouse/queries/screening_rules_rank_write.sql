-- rank by the stored rules' scores (before the model can train), set-based: only rows whose score or ranker
-- differ are written. Params: ranker, review_id, ranker.
UPDATE screening_queue
SET score = coalesce(rule_score, 0.0), ranker = ?, scored_key = NULL
WHERE review_id = ? AND (score IS DISTINCT FROM coalesce(rule_score, 0.0) OR ranker IS DISTINCT FROM ?)

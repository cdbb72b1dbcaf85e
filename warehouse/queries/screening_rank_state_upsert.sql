-- remember what the queue was last ranked from. Params: review_id, inputs, rules, ranker, trained_on,
-- ranked_at.
INSERT INTO screening_rank_state
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (review_id) DO UPDATE SET inputs = excluded.inputs, rules = excluded.rules,
  ranker = excluded.ranker, trained_on = excluded.trained_on, ranked_at = excluded.ranked_at

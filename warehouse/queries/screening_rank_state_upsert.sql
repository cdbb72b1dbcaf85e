-- remember what the queue was last ranked from. Params: review_id, inputs, rules, ranker, trained_on,
-- ranked_at, model (the kept model's token, or NULL).
INSERT INTO screening_rank_state (review_id, inputs, rules, ranker, trained_on, ranked_at, model)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (review_id) DO UPDATE SET inputs = excluded.inputs, rules = excluded.rules,
  ranker = excluded.ranker, trained_on = excluded.trained_on, ranked_at = excluded.ranked_at,
  model = excluded.model

-- write rule scores. Params: review_id; registered frame _rule_scores(record_id, rule_score).
UPDATE screening_queue q
SET rule_score = s.rule_score
FROM _rule_scores s
WHERE q.review_id = ? AND q.record_id = s.record_id

-- write ranking scores where they changed. Params: ranker, review_id, ranker; registered frame
-- _screening_scores(record_id, score, scored_key).
UPDATE screening_queue q
SET score = s.score, ranker = ?, scored_key = s.scored_key
FROM _screening_scores s
WHERE q.review_id = ? AND q.record_id = s.record_id
  AND (q.score IS DISTINCT FROM s.score OR q.ranker IS DISTINCT FROM ? OR q.scored_key IS DISTINCT FROM s.scored_key)

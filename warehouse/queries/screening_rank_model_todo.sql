-- queue rows the current model has not scored: new rows, rows scored by another ranker, rows whose text changed
-- since. Params: review_id, ranker.
SELECT q.record_id, coalesce(r.content_hash, '') AS content_hash
FROM screening_queue q
LEFT JOIN records r USING (record_id)
WHERE q.review_id = ?
  AND (q.ranker IS DISTINCT FROM ? OR q.scored_key IS DISTINCT FROM coalesce(r.content_hash, ''))
ORDER BY q.record_id

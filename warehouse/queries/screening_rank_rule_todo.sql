-- queue rows whose rules' score must be computed: none stored, the record moved past the queued version, or
-- (second param true) every row, when the rules changed. Params: review_id, all rows.
SELECT q.record_id, r.version, q.record_version
FROM screening_queue q
LEFT JOIN records r USING (record_id)
WHERE q.review_id = ? AND (? OR q.rule_score IS NULL OR r.version IS DISTINCT FROM q.record_version)
ORDER BY q.record_id

-- every queue row of a review with what ranking needs: the record's content hash (the key of its analysed
-- text), the record's current version, the queued version and the stored rules' score. Param: review_id.
SELECT q.record_id, r.content_hash, r.version, q.record_version, q.rule_score
FROM screening_queue q
LEFT JOIN records r USING (record_id)
WHERE q.review_id = ?
ORDER BY q.record_id

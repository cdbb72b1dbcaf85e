-- the final screening decisions of the queue's records with the content hash of the text they were made on:
-- what the ranking model learns from. Param: review_id.
SELECT q.record_id, coalesce(r.content_hash, '') AS content_hash, s.title_abstract, s.full_text
FROM screening_queue q
JOIN v_record_screening s USING (review_id, record_id)
LEFT JOIN records r USING (record_id)
WHERE q.review_id = ?
ORDER BY q.record_id

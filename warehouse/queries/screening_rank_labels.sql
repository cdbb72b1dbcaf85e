-- the final screening decisions of the queue's records: what the ranking model learns from. Param: review_id.
SELECT q.record_id, s.title_abstract, s.full_text
FROM screening_queue q
JOIN v_record_screening s USING (review_id, record_id)
WHERE q.review_id = ?
ORDER BY q.record_id

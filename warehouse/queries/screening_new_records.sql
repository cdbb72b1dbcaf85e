-- records of the review not in the screening queue yet. Params: review_id.
SELECT rr.record_id
FROM review_records rr
LEFT JOIN screening_queue q ON q.review_id = rr.review_id AND q.record_id = rr.record_id
WHERE rr.review_id = ? AND q.record_id IS NULL
ORDER BY rr.record_id

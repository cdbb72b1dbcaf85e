-- other reviews holding records unknown to this one. Params: review_id; registered frame
-- _decision_unknown_ids(record_id).
SELECT rr.record_id, list(DISTINCT rr.review_id ORDER BY rr.review_id)
FROM review_records rr
JOIN _decision_unknown_ids u USING (record_id)
WHERE rr.review_id <> ?
GROUP BY rr.record_id

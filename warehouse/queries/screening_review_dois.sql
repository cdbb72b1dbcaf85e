-- DOIs of the review's records. Params: review_id.
SELECT r.record_id, r.doi
FROM records r
JOIN review_records rr USING (record_id)
WHERE rr.review_id = ? AND r.doi IS NOT NULL
ORDER BY r.record_id

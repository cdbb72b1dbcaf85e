-- registry title keys of frontier records. Params: review_id; registered frame _link_frontier(record_id).
SELECT k.record_id, k.key
FROM study_link_keys k
JOIN _link_frontier USING (record_id)
WHERE k.review_id = ? AND k.kind = 'rtitle'

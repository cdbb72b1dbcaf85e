-- title keys of lonely frontier records. Params: review_id; registered frame _link_frontier(record_id).
SELECT i.record_id, i.title_key
FROM study_link_inputs i
JOIN _link_frontier USING (record_id)
WHERE i.review_id = ? AND i.lonely

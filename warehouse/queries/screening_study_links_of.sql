-- the study each wanted record is linked to. Params: review_id; registered frame _screening_wanted(record_id).
SELECT l.record_id, l.study_id
FROM study_links l
JOIN _screening_wanted USING (record_id)
WHERE l.review_id = ?
ORDER BY l.record_id

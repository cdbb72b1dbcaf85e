-- link conflicts people should look at. Params: review_id.
SELECT record_id, other_record_id, method, reason
FROM study_link_conflicts
WHERE review_id = ?
ORDER BY record_id, other_record_id

-- studies holding a record with this DOI. Params: review_id, lower-case DOI.
SELECT DISTINCT l.study_id
FROM study_links l
JOIN records r USING (record_id)
WHERE l.review_id = ? AND lower(r.doi) = ?

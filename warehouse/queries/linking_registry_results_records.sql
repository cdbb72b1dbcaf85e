-- registry records of the review with posted results. Params: review_id.
SELECT l.record_id, l.study_id, r.source_id, r.version
FROM study_links l
JOIN records r USING (record_id)
WHERE l.review_id = ? AND r.source = 'ctgov'
  AND coalesce(json_extract(r.extra, '$.has_results')::BOOLEAN, false)
ORDER BY l.record_id

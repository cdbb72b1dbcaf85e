-- every study of the review with its records and link evidence. Params: review_id.
SELECT l.study_id, s.label, l.record_id, r.source, r.year, r.title, l.method, l.score, e.evidence
FROM study_links l
JOIN records r USING (record_id)
LEFT JOIN studies s ON s.review_id = l.review_id AND s.study_id = l.study_id
LEFT JOIN study_link_evidence e ON e.review_id = l.review_id AND e.record_id = l.record_id
WHERE l.review_id = ?
ORDER BY l.study_id, r.source DESC, l.record_id

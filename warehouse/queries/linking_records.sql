-- the review's records as linking sees them, by record id. Params: review_id. {join} is empty (every record)
-- or "JOIN _link_ids USING (record_id)" (the records of a registered frame _link_ids(record_id)).
SELECT r.record_id, r.source, r.title, r.abstract, r.authors, r.year, r.doi, r.registry_ids, r.extra
FROM review_records rr
JOIN records r USING (record_id) {join}
WHERE rr.review_id = ?
ORDER BY r.record_id

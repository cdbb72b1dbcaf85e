-- records sharing a key (trial id, DOI, listed PMID) with a frontier record (frame _link_frontier), and the
-- other records of the frontier records' studies. Params: review_id, review_id.
SELECT DISTINCT k2.record_id
FROM study_link_keys k1
JOIN _link_frontier f USING (record_id)
JOIN study_link_keys k2 ON k2.review_id = k1.review_id AND k2.kind = k1.kind AND k2.key = k1.key
WHERE k1.review_id = ? AND k1.kind <> 'rtitle'
UNION
SELECT l2.record_id
FROM study_links l1
JOIN _link_frontier f USING (record_id)
JOIN study_links l2 ON l2.review_id = l1.review_id AND l2.study_id = l1.study_id
WHERE l1.review_id = ?

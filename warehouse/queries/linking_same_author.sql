-- publications with the same first author as a frontier publication (frame _link_frontier), years at most one
-- apart (or unknown), both with comparable titles: the only pairs the title rule can tie. Param: review_id.
SELECT a.record_id, b.record_id, a.title_key, b.title_key
FROM study_link_inputs a
JOIN _link_frontier f USING (record_id)
JOIN study_link_inputs b ON b.review_id = a.review_id AND b.surname = a.surname AND b.record_id <> a.record_id
WHERE a.review_id = ? AND a.title_key IS NOT NULL AND b.title_key IS NOT NULL
  AND (a.year IS NULL OR b.year IS NULL OR abs(a.year - b.year) <= 1)

-- records of a review that linking must look at again (gone = false: new or changed since the last linking run,
-- or named by a person's link decision newer than it; gone = true: linked before but no longer a record of the
-- review). Params: review_id, review_id, review_id, the newest decision_id the last run applied (0: none).
SELECT rr.record_id, false AS gone
FROM review_records rr
JOIN records r USING (record_id)
LEFT JOIN study_link_inputs i ON i.review_id = rr.review_id AND i.record_id = rr.record_id
WHERE rr.review_id = ? AND (i.record_id IS NULL OR i.record_version <> r.version)
UNION ALL
SELECT i.record_id, true AS gone
FROM study_link_inputs i
WHERE i.review_id = ?
  AND NOT EXISTS (SELECT 1 FROM review_records rr JOIN records r USING (record_id)
                  WHERE rr.review_id = i.review_id AND rr.record_id = i.record_id)
UNION ALL
SELECT d.record_id,
       NOT EXISTS (SELECT 1 FROM review_records rr JOIN records r USING (record_id)
                   WHERE rr.review_id = d.review_id AND rr.record_id = d.record_id) AS gone
FROM study_link_decisions d
WHERE d.review_id = ? AND d.decision_id > ?

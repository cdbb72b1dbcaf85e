-- earlier versions' suggestions whose numbers the new version no longer carries. Params: review_id, record_id,
-- record_version, import keys of the new version.
SELECT e.row_id, e.status,
  EXISTS (SELECT 1 FROM extraction_rows a WHERE a.derived_from = e.row_id) AS accepted
FROM registry_suggestions s
JOIN extraction_rows e USING (row_id)
WHERE s.review_id = ? AND s.record_id = ? AND s.record_version < ? AND s.retired_at IS NULL
  AND NOT list_contains(?, e.import_key)
ORDER BY e.row_id

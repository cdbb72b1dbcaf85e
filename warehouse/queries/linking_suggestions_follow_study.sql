-- a record's waiting suggestions follow the study it is linked to now. Params: study_id, review_id, study_id,
-- review_id, record_id.
UPDATE extraction_rows
SET study_id = ?
WHERE review_id = ? AND status = 'suggested' AND origin = 'registry' AND study_id <> ?
  AND row_id IN (SELECT row_id FROM registry_suggestions WHERE review_id = ? AND record_id = ?)

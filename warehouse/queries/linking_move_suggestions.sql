-- waiting registry suggestions follow their study to its new id. Params: study_id, review_id, old study_id.
UPDATE extraction_rows
SET study_id = ?
WHERE review_id = ? AND study_id = ? AND status = 'suggested' AND origin = 'registry'

-- a queued record's new version (same screening state). Params: record_version, reasons, rule_score,
-- change_note, change_note, review_id, record_id.
UPDATE screening_queue
SET record_version = ?, reasons = ?, rule_score = ?,
  change_note = CASE WHEN ? IS NULL THEN change_note ELSE ? END
WHERE review_id = ? AND record_id = ?

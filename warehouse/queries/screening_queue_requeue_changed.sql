-- a screened record that changed comes back labelled 'changed'. Params: record_version, entered_at,
-- change_note, reasons, stage, rule_score, review_id, record_id.
UPDATE screening_queue
SET record_version = ?, entered_at = ?, label = 'changed', change_note = ?, reasons = ?, stage = ?,
  state = 'pending', rule_score = ?
WHERE review_id = ? AND record_id = ?

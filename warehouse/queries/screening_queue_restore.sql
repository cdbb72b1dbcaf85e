-- put a record set aside as a duplicate back in the queue. Params: record_version, entered_at, reasons, label,
-- change_note, score, ranker, stage, state, rule_score, review_id, record_id.
UPDATE screening_queue
SET record_version = ?, entered_at = ?, reasons = ?, label = ?, change_note = ?, score = ?, ranker = ?,
  stage = ?, state = ?, rule_score = ?
WHERE review_id = ? AND record_id = ?

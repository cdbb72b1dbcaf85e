-- add new records to the queue. Params: review_id, entered_at, ranker; registered frame _queue_new.
INSERT INTO screening_queue (review_id, record_id, record_version, entered_at, reasons, label, change_note, score, ranker, stage, state, rule_score) SELECT ?, record_id, record_version, ?, reasons, label, change_note, score, ?, stage, state, score
FROM _queue_new

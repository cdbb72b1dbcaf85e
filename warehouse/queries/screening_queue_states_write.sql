-- write recomputed queue stages/states. Params: review_id; registered frame _queue_states(record_id, stage,
-- state).
UPDATE screening_queue q
SET stage = u.stage, state = u.state
FROM _queue_states u
WHERE q.review_id = ? AND q.record_id = u.record_id

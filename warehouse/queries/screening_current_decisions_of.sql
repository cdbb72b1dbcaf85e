-- current decisions of some records. Params: review_id; registered frame _decision_ids(record_id).
SELECT d.record_id, d.stage, d.reviewer, d.decision, d.reason, d.decided_at, d.decision_id
FROM v_current_decisions d
JOIN _decision_ids USING (record_id)
WHERE d.review_id = ?

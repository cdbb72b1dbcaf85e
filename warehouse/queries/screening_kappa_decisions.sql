-- every decision not undone at one stage, for agreement. Params: review_id, stage.
SELECT d.record_id, d.reviewer, d.decision
FROM screening_decisions d
WHERE d.review_id = ? AND d.stage = ?
  AND NOT EXISTS (SELECT 1 FROM screening_undos u WHERE u.decision_id = d.decision_id)
ORDER BY d.record_id, d.decided_at, d.decision_id

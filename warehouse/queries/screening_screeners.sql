-- who screened which record at which stage first (undone decisions left out). Params: review_id; registered
-- frame _screener_ids(record_id).
SELECT d.record_id, d.stage, d.reviewer, min(d.decided_at) AS first_at
FROM screening_decisions d
JOIN _screener_ids USING (record_id)
WHERE d.review_id = ? AND NOT EXISTS (SELECT 1 FROM screening_undos u WHERE u.decision_id = d.decision_id)
GROUP BY ALL
ORDER BY d.record_id, d.stage, first_at, d.reviewer

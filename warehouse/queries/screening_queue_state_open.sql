-- each queue row (duplicates aside) with its final decisions and how many people decided it at a stage since it
-- (re-)entered the queue (two-reviewer reviews need two fresh decisions), leaving out the rows no decision can move:
-- never decided by anyone, not back in the queue (changed / new report) and still pending at title/abstract, where the
-- rules put such a row.
-- Param: review_id.
SELECT q.record_id, q.label, q.stage, q.state, s.title_abstract, s.full_text AS full_text_decision,
       (SELECT count(DISTINCT d.reviewer) FROM v_current_decisions d
        WHERE d.review_id = q.review_id AND d.record_id = q.record_id AND d.stage = 'title_abstract'
          AND coalesce(d.recorded_at, d.decided_at) >= q.entered_at) AS fresh_ta,
       (SELECT count(DISTINCT d.reviewer) FROM v_current_decisions d
        WHERE d.review_id = q.review_id AND d.record_id = q.record_id AND d.stage = 'full_text'
          AND coalesce(d.recorded_at, d.decided_at) >= q.entered_at) AS fresh_ft
FROM screening_queue q
LEFT JOIN v_record_screening s USING (review_id, record_id)
WHERE q.review_id = ? AND q.state <> 'duplicate'
  AND (q.label IN ('changed', 'new_report') OR q.stage <> 'title_abstract' OR q.state <> 'pending'
       OR EXISTS (SELECT 1 FROM screening_decisions d WHERE d.review_id = q.review_id AND d.record_id = q.record_id))
ORDER BY q.record_id

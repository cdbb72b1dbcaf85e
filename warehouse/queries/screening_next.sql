-- pending records at one stage that one reviewer has not decided since they (re-)entered the queue, best
-- first ('maybe' at full text stays open for its reviewer). Params: review_id, stage, reviewer.
SELECT q.record_id, q.title, q.year, q.journal, q.source, q.label, q.reasons, q.change_note, q.score, q.ranker,
       q.stage, q.rank
FROM v_screening_queue q
WHERE q.review_id = ? AND q.stage = ?
  AND NOT EXISTS (SELECT 1 FROM v_current_decisions d
                  WHERE d.review_id = q.review_id AND d.record_id = q.record_id AND d.stage = q.stage
                    AND d.reviewer = ? AND coalesce(d.recorded_at, d.decided_at) >= q.entered_at
                    AND NOT (d.stage = 'full_text' AND d.decision = 'maybe'))
ORDER BY q.rank

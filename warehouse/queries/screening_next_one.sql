-- the best-ranked pending record at one stage that one reviewer has not decided since it (re-)entered the
-- queue, passing over the records they skipped (the live "next record"; the rules of screening_next), with
-- `waiting`: how many records wait for that reviewer at that stage, skipped ones included.
-- Params: review_id, stage, reviewer, skipped record ids (a list).
SELECT * EXCLUDE (skipped) FROM (
    SELECT q.record_id, q.title, q.year, q.journal, q.source, q.label, q.reasons, q.change_note, q.score, q.ranker,
           q.stage, q.rank, count(*) OVER () AS waiting, list_contains(?::VARCHAR[], q.record_id) AS skipped
    FROM v_screening_queue q
    WHERE q.review_id = ? AND q.stage = ?
      AND NOT EXISTS (SELECT 1 FROM v_current_decisions d
                      WHERE d.review_id = q.review_id AND d.record_id = q.record_id AND d.stage = q.stage
                        AND d.reviewer = ? AND coalesce(d.recorded_at, d.decided_at) >= q.entered_at
                        AND NOT (d.stage = 'full_text' AND d.decision = 'maybe'))
)
WHERE NOT skipped
ORDER BY rank
LIMIT 1

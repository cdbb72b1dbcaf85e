-- the new link rows (frame _link_new) with their linked_at: kept from the old row while study and method stay
-- the same, else now. Params: review_id, now, review_id.
CREATE OR REPLACE TEMP TABLE _link_rows AS
SELECT ?::VARCHAR AS review_id, n.record_id, n.study_id, n.method, n.score,
       CASE WHEN o.study_id = n.study_id AND o.method = n.method THEN o.linked_at ELSE ?::TIMESTAMPTZ END AS linked_at
FROM _link_new n
LEFT JOIN study_links o ON o.review_id = ? AND o.record_id = n.record_id

;
-- the refused links (frame _link_conflicts) with their found_at: kept from the same refusal found earlier.
-- Params: review_id, now, review_id.
CREATE OR REPLACE TEMP TABLE _link_conflict_rows AS
SELECT ?::VARCHAR AS review_id, c.record_id, c.other_record_id, c.method, c.reason,
       coalesce(o.found_at, ?::TIMESTAMPTZ) AS found_at
FROM _link_conflicts c
LEFT JOIN (SELECT record_id, other_record_id, method, reason, min(found_at) AS found_at
           FROM study_link_conflicts WHERE review_id = ?
           GROUP BY ALL) o USING (record_id, other_record_id, method, reason)

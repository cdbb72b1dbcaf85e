-- queue rows whose record has a newer version than the one people saw: what changed (record_versions),
-- registry events of those versions' runs, and whether the record was screened. Param: review_id.
SELECT q.record_id, q.state, q.record_version AS queued_version, r.version,
       (SELECT list(v.changed_fields ORDER BY v.version) FROM record_versions v
        WHERE v.record_id = q.record_id AND v.version > q.record_version) AS changed_fields,
       (SELECT list(json_object('kind', e.kind, 'old_value', e.old_value, 'new_value', e.new_value) ORDER BY e.event_id)
        FROM registry_events e
        WHERE e.record_id = q.record_id
          AND e.run_id IN (SELECT v.run_id FROM record_versions v
                           WHERE v.record_id = q.record_id AND v.version > q.record_version)) AS events,
       EXISTS (SELECT 1 FROM v_current_decisions d
               WHERE d.review_id = q.review_id AND d.record_id = q.record_id) AS screened,
       coalesce(s.title_abstract IN ('include', 'maybe') OR s.full_text IS NOT NULL, false) AS passed_ta
FROM screening_queue q
JOIN records r USING (record_id)
LEFT JOIN v_record_screening s USING (review_id, record_id)
WHERE q.review_id = ? AND r.version > q.record_version
ORDER BY q.record_id

-- Included studies of a review version with every linked record's identifiers, as the warehouse knew them when
-- the version was published: re-rendering an old report later never adds studies or records that came after it.
-- $1 review_id, $2 version, $3 the version's created_at (records first seen later are left out).
WITH analysed AS (
    SELECT DISTINCT es.study_id
    FROM review_version_runs vr
    JOIN analysis_runs ar ON ar.analysis_run_id = vr.analysis_run_id
    JOIN estimate_studies es ON es.analysis_run_id = coalesce(ar.reused_run_id, ar.analysis_run_id)
    WHERE vr.review_id = $1 AND vr.version = $2
), included AS (
    SELECT study_id FROM analysed
    UNION
    -- included at full text as the screening stood at that version (v_stage_final_as_of), with or without data
    SELECT DISTINCT l.study_id
    FROM study_links l
    JOIN v_stage_final_as_of f ON f.review_id = l.review_id AND f.record_id = l.record_id
    WHERE l.review_id = $1 AND f.as_of_version = $2 AND f.stage = 'full_text' AND f.decision = 'include'
)
SELECT i.study_id,
       coalesce(s.label, i.study_id) AS label,
       l.record_id, r.source, r.source_id, r.title, r.authors, r.journal, r.year, r.doi, r.registry_ids,
       coalesce(r.retracted, false) AS retracted, coalesce(r.deleted, false) AS deleted
FROM included i
LEFT JOIN studies s ON s.review_id = $1 AND s.study_id = i.study_id
LEFT JOIN study_links l ON l.review_id = $1 AND l.study_id = i.study_id
LEFT JOIN records r ON r.record_id = l.record_id AND r.first_seen_at <= $3
WHERE l.record_id IS NULL OR r.record_id IS NOT NULL
ORDER BY i.study_id, r.source, l.record_id

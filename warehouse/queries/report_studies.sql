-- Included studies of a review version with every linked record's identifiers.
-- $1 review_id, $2 version, $3 true when the version is the latest (then the current inclusion state counts too).
WITH analysed AS (
    SELECT DISTINCT es.study_id
    FROM review_version_runs vr
    JOIN analysis_runs ar ON ar.analysis_run_id = vr.analysis_run_id
    JOIN estimate_studies es ON es.analysis_run_id = coalesce(ar.reused_run_id, ar.analysis_run_id)
    WHERE vr.review_id = $1 AND vr.version = $2
), included AS (
    SELECT study_id FROM analysed
    UNION
    SELECT study_id FROM v_included_studies WHERE review_id = $1 AND $3
)
SELECT i.study_id,
       coalesce(s.label, i.study_id) AS label,
       l.record_id, r.source, r.source_id, r.title, r.authors, r.journal, r.year, r.doi, r.registry_ids,
       coalesce(r.retracted, false) AS retracted, coalesce(r.deleted, false) AS deleted
FROM included i
LEFT JOIN studies s ON s.review_id = $1 AND s.study_id = i.study_id
LEFT JOIN study_links l ON l.review_id = $1 AND l.study_id = i.study_id
LEFT JOIN records r ON r.record_id = l.record_id
ORDER BY i.study_id, r.source, l.record_id

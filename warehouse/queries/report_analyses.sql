-- The analysis runs one review version publishes, with their results. A run marked `unchanged` reuses an
-- earlier run's numbers: its result and estimate come from that run.
SELECT vr.analysis_id,
       ar.analysis_run_id,
       ar.status,
       ar.error,
       ar.engine_version,
       coalesce(ar.result, src.result) AS result,
       coalesce(e.measure, es.measure) AS measure,
       coalesce(e.method, es.method) AS method,
       coalesce(e.test, es.test) AS test,
       coalesce(e.tsa_status, es.tsa_status) AS tsa_status
FROM review_version_runs vr
JOIN analysis_runs ar ON ar.analysis_run_id = vr.analysis_run_id
LEFT JOIN analysis_runs src ON src.analysis_run_id = ar.reused_run_id
LEFT JOIN estimates e ON e.analysis_run_id = ar.analysis_run_id
LEFT JOIN estimates es ON es.analysis_run_id = ar.reused_run_id
WHERE vr.review_id = ? AND vr.version = ?
ORDER BY vr.analysis_id

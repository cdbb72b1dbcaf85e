-- The search log of a review up to one update cycle (all runs when the version has no update id), newest first.
SELECT source, query, mode, window_start, window_end, started_at, finished_at, status,
       n_found, n_new, n_changed, n_unchanged, n_deleted, n_requests, error
FROM search_runs
WHERE review_id = $1 AND ($2::BIGINT IS NULL OR update_id IS NULL OR update_id <= $2::BIGINT)
ORDER BY started_at DESC, run_id DESC

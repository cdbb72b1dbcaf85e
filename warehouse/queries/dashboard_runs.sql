-- the last 30 update cycles of a review with each source's search run. Params: review_id.
SELECT u.update_id, u.started_at, u.finished_at, u.status, u.error,
       list({'source': s.source, 'status': s.status, 'new': s.n_new, 'changed': s.n_changed,
             'deleted': s.n_deleted} ORDER BY s.source) FILTER (WHERE s.run_id IS NOT NULL) AS sources
FROM update_runs u LEFT JOIN search_runs s USING (update_id)
WHERE u.review_id = ?
GROUP BY ALL
ORDER BY u.update_id DESC
LIMIT 30

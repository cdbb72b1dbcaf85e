-- screening decisions per day (last 60 days with any), includes among them. Params: review_id.
SELECT CAST(decided_at AS DATE) AS day, count(*) AS decisions,
       count(*) FILTER (WHERE decision = 'include') AS includes
FROM screening_decisions
WHERE review_id = ?
GROUP BY ALL
ORDER BY day DESC
LIMIT 60

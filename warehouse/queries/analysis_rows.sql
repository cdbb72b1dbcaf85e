-- current extraction rows of one outcome for the studies that enter the analyses
-- (included at full text, not retracted, not deleted), with the study's year for cumulative order:
-- the year its results were first published (earliest linked publication), else its registry entry's year,
-- so a trial registered in 2015 and published in 2021 enters the cumulative analysis and TSA in 2021.
-- Parameters: review_id, outcome_id
WITH inc AS (
    SELECT study_id, record_ids FROM v_included_studies
    WHERE review_id = $review_id AND NOT coalesce(retracted, false) AND NOT coalesce(deleted, false)
), yr AS (
    SELECT l.study_id, coalesce(min(r.year) FILTER (WHERE r.source <> 'ctgov'), min(r.year)) AS year
    FROM study_links l JOIN records r USING (record_id)
    WHERE l.review_id = $review_id GROUP BY l.study_id
)
SELECT e.row_id, e.study_id, e.outcome_id, e.arm, e.group_label, e.events, e.total, e.mean, e.sd, e.n,
       e.estimate, e.se, e.ci_lower, e.ci_upper, e.scale, e.subgroup, yr.year
FROM v_current_extraction e
JOIN inc USING (study_id)
LEFT JOIN yr USING (study_id)
WHERE e.review_id = $review_id AND e.outcome_id = $outcome_id
ORDER BY e.study_id, e.arm, e.group_label NULLS FIRST, e.subgroup NULLS FIRST, e.row_id

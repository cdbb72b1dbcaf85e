-- the review's studies, oldest first (registry ids first among equals). Params: review_id. Created together: a
-- registry study's id (its NCT id) is the one kept when two studies merge.
SELECT study_id
FROM studies
WHERE review_id = ?
ORDER BY created_at, regexp_matches(study_id, '^NCT[0-9]{8}$') DESC, study_id

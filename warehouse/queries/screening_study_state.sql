-- records of a review that people have decided on (any current decision), with their study and final
-- decisions; used to tell whether a new record belongs to a study already screened. Param: review_id.
SELECT l.study_id, l.record_id, s.title_abstract, s.full_text, s.full_text_reason
FROM study_links l
JOIN (SELECT DISTINCT review_id, record_id FROM v_current_decisions) d USING (review_id, record_id)
LEFT JOIN v_record_screening s USING (review_id, record_id)
WHERE l.review_id = ?
ORDER BY l.study_id, l.record_id

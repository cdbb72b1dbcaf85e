-- as screening_study_state, for the studies of some records only (frame _screening_wanted): the decided
-- records of those studies with their final decisions. Param: review_id.
SELECT l.study_id, l.record_id, s.title_abstract, s.full_text, s.full_text_reason
FROM study_links l
JOIN (SELECT DISTINCT l2.study_id FROM study_links l2 JOIN _screening_wanted w USING (record_id)
      WHERE l2.review_id = $1) st USING (study_id)
JOIN (SELECT DISTINCT review_id, record_id FROM v_current_decisions) d USING (review_id, record_id)
LEFT JOIN v_record_screening s USING (review_id, record_id)
WHERE l.review_id = $1
ORDER BY l.study_id, l.record_id

-- a review's queue records for export (duplicates left out) with their title/abstract relevance:
-- 1 passed title/abstract (an include, or a maybe that went on to a full-text decision, or included at full
-- text), 0 excluded, NULL not decided or a maybe still waiting (ASReview has no maybe: never sent as an
-- include). decision_ta: the final title/abstract decision. Param: review_id.
SELECT q.record_id AS livingmeta_id,
       CASE WHEN s.title_abstract = 'include' THEN 1
            WHEN s.title_abstract = 'maybe' AND s.full_text IN ('include', 'exclude') THEN 1
            WHEN s.full_text = 'include' THEN 1
            WHEN s.title_abstract = 'exclude' OR s.full_text = 'exclude' THEN 0 END AS label_ta,
       s.title_abstract AS decision_ta
FROM screening_queue q
LEFT JOIN v_record_screening s USING (review_id, record_id)
WHERE q.review_id = ? AND q.state <> 'duplicate'
ORDER BY q.record_id

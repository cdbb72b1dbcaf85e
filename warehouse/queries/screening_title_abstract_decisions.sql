-- current title/abstract decisions in order, for the stopping guidance. Params: review_id.
SELECT decision
FROM v_current_decisions
WHERE review_id = ? AND stage = 'title_abstract'
ORDER BY decided_at, decision_id

-- what the links were last computed from. Params: review_id, rules, last_decision_id, linked_at.
INSERT INTO study_link_state
VALUES (?, ?, ?, ?)
ON CONFLICT (review_id) DO UPDATE SET rules = excluded.rules, last_decision_id = excluded.last_decision_id,
  linked_at = excluded.linked_at

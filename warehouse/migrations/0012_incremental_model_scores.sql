-- 0012: what lets a nightly score only the records that arrived or changed.
--
-- Ranking (warehouse/screening.py `rank_queue`) refits the ranking model only when what it learns from changed
-- (the decisions, the model settings); between two such changes the model that
-- scored the queue scores the records that enter it or whose text changed. `scored_key` is the record's content
-- hash when its score was computed, so a changed text is scored again; `screening_rank_state.inputs` now
-- fingerprints what the model was trained on.
ALTER TABLE screening_queue ADD COLUMN scored_key VARCHAR;
-- the kept model that scored the queue (its file beside the warehouse carries the same token): a model file
-- written by a ranking whose transaction was rolled back, or by another process, does not match and is not used
ALTER TABLE screening_rank_state ADD COLUMN model VARCHAR;

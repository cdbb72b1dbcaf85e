-- what linking saw of some records (frame _link_inputs), with the record version it linked. Param: review_id.
INSERT INTO study_link_inputs
SELECT ?, i.record_id, r.version, i.source, i.surname, i.year, i.title_key, i.lonely
FROM _link_inputs i JOIN records r USING (record_id)

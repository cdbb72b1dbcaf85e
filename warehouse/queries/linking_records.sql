-- the review's records as linking sees them, by record id. Params: review_id. {join} is empty (every record)
-- or "JOIN _link_ids USING (record_id)" (the records of a registered frame _link_ids(record_id)).
-- A publication's abstract is read only when "title abstract" may mention a trial id: `find_registry_ids`
-- finds none without "nct", "rctn" (ISRCTN) or "eudract" in it in some case (lower() maps every letter its
-- case-insensitive patterns accept there to these), so a first load does not hold every abstract (issue 15).
SELECT record_id, source, title, CASE WHEN may_name_trials THEN abstract END AS abstract, may_name_trials,
       authors, year, doi, registry_ids, extra
FROM (
    SELECT r.record_id, r.source, r.title, r.abstract, r.authors, r.year, r.doi, r.registry_ids, r.extra,
           r.source <> 'ctgov' AND list_bool_or([contains(t, w) FOR w IN ['nct', 'rctn', 'eudract']])
               AS may_name_trials
    FROM review_records rr
    JOIN records r USING (record_id) {join},
    LATERAL (SELECT lower(coalesce(r.title, '') || ' ' || coalesce(r.abstract, '')) AS t)
    WHERE rr.review_id = ?
)
ORDER BY record_id

-- 0009: nothing a source sent is lost or added silently (issue 14).
-- A record that could not be read (malformed) or that nobody asked for (unrequested) is not stored as a
-- record: it is counted on its search run, kept here with what was wrong, and alerted (alerts.run_id).

ALTER TABLE search_runs ADD COLUMN n_skipped INTEGER DEFAULT 0;
ALTER TABLE search_runs ADD COLUMN n_unrequested INTEGER DEFAULT 0;
ALTER TABLE alerts ADD COLUMN run_id BIGINT;

CREATE TABLE source_record_skips (
    run_id        BIGINT NOT NULL,
    review_id     VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,      -- pubmed | ctgov
    source_id     VARCHAR,               -- PMID / NCT id; NULL when the record did not say
    reason        VARCHAR NOT NULL,      -- malformed | unrequested
    field         VARCHAR,               -- the field that was wrong (malformed)
    problem       VARCHAR NOT NULL,      -- for people
    payload       VARCHAR,               -- the record as received
    recorded_at   TIMESTAMPTZ NOT NULL
);

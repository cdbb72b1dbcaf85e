-- 0010: what incremental linking and ranking need to touch only new and changed records.
--
-- Linking (warehouse/linking.py `relink`) keeps, per review and record, the record version it last linked and
-- the keys by which two records can be tied (trial ids, DOI, a registry entry's listed PMIDs, first author and
-- title for near-identical titles). A later run re-links only the records that are new, changed, gone or named
-- by a new link decision, together with every record they can join by those keys and the other records of
-- their studies, so its result equals relinking the whole review. When the linking rules or thresholds change
-- (`rules` differs), the next run relinks everything and rebuilds these tables.

CREATE TABLE study_link_inputs (
    review_id      VARCHAR NOT NULL,
    record_id      VARCHAR NOT NULL,
    record_version INTEGER NOT NULL,      -- records.version the last linking run saw
    source         VARCHAR NOT NULL,      -- pubmed | ctgov
    surname        VARCHAR,               -- first author's family name, lower case (publications with a linkable title)
    year           INTEGER,
    title_key      VARCHAR,               -- title reduced for comparison, tokens sorted (publications with a linkable title)
    lonely         BOOLEAN NOT NULL,      -- a publication with a linkable title naming no NCT id (compared with registry titles)
    PRIMARY KEY (review_id, record_id)
);

CREATE TABLE study_link_keys (
    review_id      VARCHAR NOT NULL,
    record_id      VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,      -- reg (trial id) | doi | ref (PMID a registry entry lists, or a publication's own id) | rtitle | content
    key            VARCHAR NOT NULL       -- the id, DOI, "pubmed:<PMID>", a registry title reduced for comparison, or first author + content words
);

CREATE TABLE study_link_state (
    review_id        VARCHAR PRIMARY KEY,
    rules            VARCHAR NOT NULL,    -- fingerprint of the linking rules and thresholds the tables were built with
    last_decision_id BIGINT,              -- the newest study_link_decisions row applied
    linked_at        TIMESTAMPTZ NOT NULL
);

-- the rules' score of a queue row's record version, kept so that ranking by rules (before the model can
-- train) does not run the rules over every record again
ALTER TABLE screening_queue ADD COLUMN rule_score DOUBLE;

-- what the queue of each review was last ranked from: re-ranking the same records, decisions and settings
-- gives the same scores, so an update that changed none of them does not rank again
CREATE TABLE screening_rank_state (
    review_id     VARCHAR PRIMARY KEY,
    inputs        VARCHAR NOT NULL,       -- fingerprint of the queue's records (content), decisions and settings
    rules         VARCHAR NOT NULL,       -- fingerprint of the screening rules' settings the rule_score values follow
    ranker        VARCHAR NOT NULL,       -- the ranker it produced (screening_queue.ranker)
    trained_on    INTEGER NOT NULL,
    ranked_at     TIMESTAMPTZ NOT NULL
);

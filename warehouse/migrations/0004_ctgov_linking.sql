-- 0004: ClinicalTrials.gov suggestions and study linking.

-- Where each registry-suggested extraction row came from. `extraction_rows.outcome_id` is NOT NULL, so a
-- suggestion carries the literal outcome 'unassigned' (a person picks the review outcome when accepting it);
-- the registry's own outcome, time frame, unit and groups are kept here, column by column.
CREATE TABLE registry_suggestions (
    row_id        BIGINT PRIMARY KEY,    -- extraction_rows.row_id of the suggested row
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,      -- "ctgov:NCT…" the results were posted on
    record_version INTEGER NOT NULL,     -- records.version the suggestion was derived from
    outcome_title VARCHAR,
    outcome_type  VARCHAR,               -- PRIMARY | SECONDARY | OTHER_PRE_SPECIFIED | POST_HOC
    time_frame    VARCHAR,
    units         VARCHAR,
    param_type    VARCHAR,               -- COUNT_OF_PARTICIPANTS | MEAN | … or the analysis' effect type
    group_id      VARCHAR,               -- OG000 (or "OG000,OG001" for an analysis)
    group_title   VARCHAR,
    ci_level      DOUBLE,
    problems      JSON,                  -- values of this row that could not be used, as text
    created_at    TIMESTAMPTZ NOT NULL
);

-- When linking merges two existing studies (a record that ties them together arrived), the study that
-- disappears is remembered here, so identifiers and extraction rows naming it still resolve.
CREATE TABLE study_aliases (
    review_id     VARCHAR NOT NULL,
    alias         VARCHAR NOT NULL,      -- the old study id
    study_id      VARCHAR NOT NULL,      -- the study it is now part of
    reason        VARCHAR NOT NULL,      -- e.g. "merged: pubmed:123 carries NCT01234567"
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, alias)
);

-- Why each record sits in its study: the identifier or title that tied it (people read this in
-- `livingmeta studies list`). One row per (review, record), rewritten with study_links.
CREATE TABLE study_link_evidence (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    evidence      VARCHAR,               -- e.g. "NCT02637700 shared with ctgov:NCT02637700"
    PRIMARY KEY (review_id, record_id)
);

-- Links automatic linking refused (two registry entries in one study, a person's split, conflicting NCT ids):
-- rewritten on every linking run, shown by `livingmeta studies list` for a person to check.
CREATE TABLE study_link_conflicts (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    other_record_id VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    found_at      TIMESTAMPTZ NOT NULL
);

-- Each registry record version whose posted results were read for suggestions, with what could not be
-- parsed ("NA", "<0.001", percentages…): read once per version, so re-running adds nothing.
CREATE TABLE registry_results_reads (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    record_version INTEGER NOT NULL,
    read_at       TIMESTAMPTZ NOT NULL,
    suggested     INTEGER NOT NULL,      -- rows suggested from this version
    problems      JSON,                  -- one line per value that could not be used
    PRIMARY KEY (review_id, record_id, record_version)
);

-- 0001: the first schema, covering the whole living-review loop.
-- Layers: raw_* (as fetched, append-only) -> normalised tables -> v_* views for dashboards.
-- Append-only tables are never updated or deleted by the code: corrections are new rows.

CREATE SEQUENCE seq_search_run START 1;
CREATE SEQUENCE seq_raw START 1;
CREATE SEQUENCE seq_decision START 1;
CREATE SEQUENCE seq_extraction START 1;
CREATE SEQUENCE seq_analysis_run START 1;
CREATE SEQUENCE seq_alert START 1;
CREATE SEQUENCE seq_update START 1;
CREATE SEQUENCE seq_registry_event START 1;
CREATE SEQUENCE seq_link_decision START 1;

CREATE TABLE reviews (
    review_id     VARCHAR PRIMARY KEY,
    title         VARCHAR NOT NULL,
    folder        VARCHAR,               -- where review.toml lives
    config_json   JSON NOT NULL,         -- the validated review.toml
    config_hash   VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- one row per update-review cycle (the flow run), whatever it did
CREATE TABLE update_runs (
    update_id     BIGINT PRIMARY KEY DEFAULT nextval('seq_update'),
    review_id     VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,      -- running | succeeded | failed
    as_of         TIMESTAMPTZ,           -- the date the cycle searched up to (replays: the snapshot date)
    flow_run_id   VARCHAR,
    summary       JSON,
    error         VARCHAR
);

CREATE TABLE search_definitions (
    review_id     VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,      -- pubmed | ctgov
    query         VARCHAR NOT NULL,      -- the query as sent (PubMed term; CT.gov parameters as JSON)
    query_hash    VARCHAR NOT NULL,
    earliest_date DATE,
    first_used_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, source, query_hash)
);

CREATE TABLE search_runs (
    run_id        BIGINT PRIMARY KEY DEFAULT nextval('seq_search_run'),
    review_id     VARCHAR NOT NULL,
    update_id     BIGINT,
    source        VARCHAR NOT NULL,
    query         VARCHAR NOT NULL,
    mode          VARCHAR NOT NULL,      -- live | replay
    window_start  TIMESTAMPTZ,
    window_end    TIMESTAMPTZ,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,      -- running | succeeded | failed
    n_found       INTEGER DEFAULT 0,     -- ids the source returned for the window(s)
    n_new         INTEGER DEFAULT 0,
    n_changed     INTEGER DEFAULT 0,
    n_unchanged   INTEGER DEFAULT 0,
    n_deleted     INTEGER DEFAULT 0,
    n_requests    INTEGER DEFAULT 0,
    error         VARCHAR
);

-- the last committed point a source was searched up to, per review; moves only with a successful run
CREATE TABLE source_watermarks (
    review_id     VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    watermark     TIMESTAMPTZ NOT NULL,
    run_id        BIGINT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, source)
);

-- exactly what a source returned for one record, append-only
CREATE TABLE raw_records (
    raw_id        BIGINT PRIMARY KEY DEFAULT nextval('seq_raw'),
    source        VARCHAR NOT NULL,
    source_id     VARCHAR NOT NULL,
    run_id        BIGINT,
    fetched_at    TIMESTAMPTZ NOT NULL,
    payload       VARCHAR NOT NULL,      -- the record's XML element / JSON object as returned
    payload_hash  VARCHAR NOT NULL
);

-- the current normalised state of every record (global: a PMID is the same for every review)
CREATE TABLE records (
    record_id     VARCHAR PRIMARY KEY,   -- "<source>:<source_id>"
    source        VARCHAR NOT NULL,
    source_id     VARCHAR NOT NULL,
    version       INTEGER NOT NULL,      -- our version counter: 1 + number of content changes
    source_version VARCHAR,
    title         VARCHAR,
    abstract      VARCHAR,
    authors       JSON,
    journal       VARCHAR,
    year          INTEGER,
    month         INTEGER,
    doi           VARCHAR,
    pmcid         VARCHAR,
    language      VARCHAR,
    publication_types JSON,
    is_rct        BOOLEAN,
    mesh          JSON,
    keywords      JSON,
    registry_ids  JSON,
    deleted       BOOLEAN NOT NULL DEFAULT false,
    retracted     BOOLEAN NOT NULL DEFAULT false,
    corrections   JSON,
    extra         JSON,
    content_hash  VARCHAR NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    last_run_id   BIGINT
);

-- every content change of a record, append-only; version 1 is the first sighting
CREATE TABLE record_versions (
    record_id     VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    content_hash  VARCHAR NOT NULL,
    data          JSON NOT NULL,         -- Record.to_dict() at that version
    changed_fields JSON,                 -- names of fields that differ from the previous version
    run_id        BIGINT,
    recorded_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (record_id, version)
);

-- which records a review's searches found (a record may belong to many reviews)
CREATE TABLE review_records (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    first_run_id  BIGINT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_run_id   BIGINT,
    PRIMARY KEY (review_id, record_id)
);

-- registry events worth an alert: status changes, results posted
CREATE TABLE registry_events (
    event_id      BIGINT PRIMARY KEY DEFAULT nextval('seq_registry_event'),
    record_id     VARCHAR NOT NULL,
    run_id        BIGINT,
    kind          VARCHAR NOT NULL,      -- status_change | results_posted
    old_value     VARCHAR,
    new_value     VARCHAR,
    occurred_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE studies (
    review_id     VARCHAR NOT NULL,
    study_id      VARCHAR NOT NULL,      -- stable label, e.g. "Geerts 2021" or "NCT02637700"
    label         VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, study_id)
);

-- the current record -> study assignment (rebuilt by linking; manual decisions win)
CREATE TABLE study_links (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    study_id      VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,      -- nct | doi | pmid | fuzzy | manual | singleton
    score         DOUBLE,
    linked_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, record_id)
);

-- people's link/unlink decisions, append-only; they win over automatic linking
CREATE TABLE study_link_decisions (
    decision_id   BIGINT PRIMARY KEY DEFAULT nextval('seq_link_decision'),
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    action        VARCHAR NOT NULL,      -- link | unlink
    study_id      VARCHAR,               -- link: the study; unlink: the study it must not join
    decided_by    VARCHAR NOT NULL,
    decided_at    TIMESTAMPTZ NOT NULL,
    note          VARCHAR
);

-- what waits for people: one row per record (per review) with why it is there and its rank score
CREATE TABLE screening_queue (
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    record_version INTEGER NOT NULL,     -- the version that entered (or re-entered) the queue
    entered_at    TIMESTAMPTZ NOT NULL,
    reasons       JSON,                  -- rule hits, e.g. ["publication type: Randomized Controlled Trial"]
    label         VARCHAR,               -- candidate | out_of_scope | changed
    change_note   VARCHAR,               -- for records back in the queue: what changed
    score         DOUBLE,
    ranker        VARCHAR,               -- rules | model name and training size
    stage         VARCHAR NOT NULL DEFAULT 'title_abstract',
    state         VARCHAR NOT NULL DEFAULT 'pending',   -- pending | decided | duplicate
    PRIMARY KEY (review_id, record_id)
);

-- every human decision, append-only; the current one is the latest per reviewer and stage
CREATE TABLE screening_decisions (
    decision_id   BIGINT PRIMARY KEY DEFAULT nextval('seq_decision'),
    review_id     VARCHAR NOT NULL,
    record_id     VARCHAR NOT NULL,
    record_version INTEGER,
    reviewer      VARCHAR NOT NULL,
    decided_at    TIMESTAMPTZ NOT NULL,
    stage         VARCHAR NOT NULL,      -- title_abstract | full_text
    decision      VARCHAR NOT NULL,      -- include | exclude | maybe
    reason        VARCHAR,
    origin        VARCHAR NOT NULL,      -- terminal | import | asreview | demo
    import_key    VARCHAR                -- hash of the imported row: importing a file twice adds nothing
);

-- extracted data: one row per study x outcome x arm (or a contrast row for generic inverse variance);
-- append-only: a correction is a new row with `supersedes` pointing to the old one
CREATE TABLE extraction_rows (
    row_id        BIGINT PRIMARY KEY DEFAULT nextval('seq_extraction'),
    review_id     VARCHAR NOT NULL,
    study_id      VARCHAR NOT NULL,
    outcome_id    VARCHAR NOT NULL,
    arm           VARCHAR NOT NULL,      -- treatment | control | single | contrast
    group_label   VARCHAR,               -- the arm's name in the source
    events        DOUBLE,
    total         DOUBLE,
    mean          DOUBLE,
    sd            DOUBLE,
    n             DOUBLE,
    estimate      DOUBLE,
    se            DOUBLE,
    ci_lower      DOUBLE,
    ci_upper      DOUBLE,
    scale         VARCHAR,               -- ratio | difference (contrast rows)
    subgroup      VARCHAR,
    extractor     VARCHAR NOT NULL,
    extracted_on  DATE,
    source_ref    VARCHAR,               -- page, table, figure, registry outcome
    origin        VARCHAR NOT NULL,      -- manual | registry
    status        VARCHAR NOT NULL,      -- active | suggested | rejected
    supersedes    BIGINT,
    import_key    VARCHAR,
    notes         VARCHAR,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE analysis_runs (
    analysis_run_id BIGINT PRIMARY KEY DEFAULT nextval('seq_analysis_run'),
    review_id     VARCHAR NOT NULL,
    analysis_id   VARCHAR NOT NULL,
    update_id     BIGINT,
    input_hash    VARCHAR NOT NULL,      -- hash of included studies' data, settings and engine version
    engine_version VARCHAR NOT NULL,
    settings      JSON NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    status        VARCHAR NOT NULL,      -- computed | unchanged | failed | no_data
    reused_run_id BIGINT,                -- for `unchanged`: the run whose results still hold
    result        JSON,                  -- full MetaResult, leave-one-out, cumulative, TSA
    error         VARCHAR
);

CREATE TABLE estimates (
    analysis_run_id BIGINT PRIMARY KEY,
    review_id     VARCHAR NOT NULL,
    analysis_id   VARCHAR NOT NULL,
    measure       VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    test          VARCHAR,
    k             INTEGER,
    participants  DOUBLE,
    estimate      DOUBLE,                -- analysis scale (log for ratios)
    se            DOUBLE,
    ci_lower      DOUBLE,
    ci_upper      DOUBLE,
    pi_lower      DOUBLE,
    pi_upper      DOUBLE,
    estimate_bt   DOUBLE,                -- back-transformed (ratio, proportion) where one exists
    ci_lower_bt   DOUBLE,
    ci_upper_bt   DOUBLE,
    pi_lower_bt   DOUBLE,
    pi_upper_bt   DOUBLE,
    statistic     DOUBLE,
    p_value       DOUBLE,
    tau2          DOUBLE,
    i2            DOUBLE,
    h2            DOUBLE,
    q             DOUBLE,
    q_df          DOUBLE,
    q_p           DOUBLE,
    tsa_status    VARCHAR,
    warnings      JSON
);

CREATE TABLE estimate_studies (
    analysis_run_id BIGINT NOT NULL,
    study_id      VARCHAR NOT NULL,
    yi            DOUBLE,
    vi            DOUBLE,
    weight        DOUBLE,                -- percent
    ci_lower      DOUBLE,
    ci_upper      DOUBLE,
    PRIMARY KEY (analysis_run_id, study_id)
);

CREATE TABLE review_versions (
    review_id     VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    as_of         TIMESTAMPTZ,
    update_id     BIGINT,
    trigger       JSON,                  -- {"new_studies": [...], "changed_data": [...], "retracted": [...]}
    summary       VARCHAR,
    PRIMARY KEY (review_id, version)
);

-- which analysis run each version publishes
CREATE TABLE review_version_runs (
    review_id     VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    analysis_id   VARCHAR NOT NULL,
    analysis_run_id BIGINT NOT NULL,
    PRIMARY KEY (review_id, version, analysis_id)
);

CREATE TABLE estimate_diffs (
    review_id     VARCHAR NOT NULL,
    from_version  INTEGER,               -- NULL for the first version
    to_version    INTEGER NOT NULL,
    analysis_id   VARCHAR NOT NULL,
    old           JSON,                  -- {estimate, ci_lower, ci_upper, pi_lower, pi_upper, k, participants, tau2, i2, p_value}
    new           JSON,
    changes       JSON,                  -- classified changes, e.g. ["significance_gained", "studies_added"]
    studies_added JSON,
    studies_removed JSON,
    PRIMARY KEY (review_id, to_version, analysis_id)
);

CREATE TABLE alerts (
    alert_id      BIGINT PRIMARY KEY DEFAULT nextval('seq_alert'),
    review_id     VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    kind          VARCHAR NOT NULL,      -- estimate_change | new_candidates | registry_event | search_failed | ...
    severity      VARCHAR NOT NULL,      -- info | warning | critical
    version       INTEGER,
    title         VARCHAR NOT NULL,
    body          VARCHAR NOT NULL,
    dedupe_key    VARCHAR                -- the same event never alerts twice
);

CREATE TABLE alert_deliveries (
    alert_id      BIGINT NOT NULL,
    channel       VARCHAR NOT NULL,      -- "file:alerts.log", "block:slack-team", "webhook:ENV_NAME"
    attempts      INTEGER NOT NULL,
    status        VARCHAR NOT NULL,      -- delivered | failed
    last_error    VARCHAR,
    delivered_at  TIMESTAMPTZ,
    PRIMARY KEY (alert_id, channel)
);

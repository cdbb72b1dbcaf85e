-- 0005: screening — undo, when the warehouse learned a decision, final decisions per stage for one and two
-- reviewers, PRISMA 2020 counts now and per review version.
--
-- Final decision rules (v_stage_final_as_of), per record and stage, from each reviewer's current decision
-- (the latest per reviewer and stage that no undo retracted):
--   reviewers = 1: the latest current decision of anyone.
--   reviewers = 2: the first two people who decided the record at that stage are its screeners; they must
--     give the same word ('agreed'); one decision alone is 'awaiting_second'; different words are a 'conflict'
--     (final NULL) until a third person decides ('resolved': the latest decision of anyone after the first two).
-- A record excluded at title/abstract needs no full-text decision; 'include' or 'maybe' at title/abstract
-- sends it to full text, where only 'include' counts as included ('maybe' there means not decided yet).

-- when the warehouse learned of a decision (decided_at is when the person decided, which an import may set
-- in the past); views "as of" a version use this so a late import never rewrites an older version's counts
ALTER TABLE screening_decisions ADD COLUMN recorded_at TIMESTAMPTZ;

-- undo keeps decisions append-only: an undo row retracts one decision; the reviewer's previous decision
-- (if any) is current again
CREATE SEQUENCE seq_screening_undo START 1;
CREATE TABLE screening_undos (
    undo_id       BIGINT PRIMARY KEY DEFAULT nextval('seq_screening_undo'),
    review_id     VARCHAR NOT NULL,
    decision_id   BIGINT NOT NULL,       -- the retracted decision
    reviewer      VARCHAR NOT NULL,
    undone_at     TIMESTAMPTZ NOT NULL,
    origin        VARCHAR NOT NULL       -- terminal | import
);

-- screening settings of each review, read from its stored review.toml
CREATE OR REPLACE VIEW v_screening_settings AS
SELECT review_id,
       coalesce(try_cast(json_extract_string(config_json, '$.screening.reviewers') AS INTEGER), 1) AS reviewers,
       coalesce(list_contains(json_extract_string(config_json, '$.screening.stages[*]'), 'full_text'), true)
           AS full_text_stage
FROM reviews;

-- the points in time screening is counted at: now (version NULL) and each review version's creation
CREATE OR REPLACE VIEW v_screening_cutoffs AS
WITH ids AS (
    SELECT review_id FROM reviews
    UNION SELECT review_id FROM review_records
    UNION SELECT review_id FROM screening_decisions
)
SELECT review_id, NULL::INTEGER AS version, 'infinity'::TIMESTAMPTZ AS cutoff FROM ids
UNION ALL
SELECT review_id, version, created_at FROM review_versions;

-- each reviewer's current decision per record and stage, as known at each cutoff
CREATE OR REPLACE VIEW v_decisions_as_of AS
SELECT * EXCLUDE (rn) FROM (
    SELECT c.version AS as_of_version, c.cutoff, d.*,
           min(d.decided_at) OVER (PARTITION BY d.review_id, c.version, d.record_id, d.reviewer, d.stage)
               AS first_decided_at,
           row_number() OVER (PARTITION BY d.review_id, c.version, d.record_id, d.reviewer, d.stage
                              ORDER BY d.decided_at DESC, d.decision_id DESC) AS rn
    FROM v_screening_cutoffs c
    JOIN screening_decisions d
      ON d.review_id = c.review_id AND coalesce(d.recorded_at, d.decided_at) <= c.cutoff
    WHERE NOT EXISTS (SELECT 1 FROM screening_undos u
                      WHERE u.decision_id = d.decision_id AND u.undone_at <= c.cutoff)
) WHERE rn = 1;

-- the latest decision per record, reviewer and stage (undone decisions skipped)
CREATE OR REPLACE VIEW v_current_decisions AS
SELECT * EXCLUDE (as_of_version, cutoff, first_decided_at) FROM v_decisions_as_of WHERE as_of_version IS NULL;

-- the final decision per record and stage at each cutoff (rules at the top of this file)
CREATE OR REPLACE VIEW v_stage_final_as_of AS
WITH d AS (
    SELECT a.*, coalesce(s.reviewers, 1) AS mode,
           dense_rank() OVER (PARTITION BY a.review_id, a.as_of_version, a.record_id, a.stage
                              ORDER BY a.first_decided_at, a.reviewer) AS reviewer_rank
    FROM v_decisions_as_of a LEFT JOIN v_screening_settings s USING (review_id)
), g AS (
    SELECT review_id, as_of_version, record_id, stage, any_value(mode) AS mode,
           arg_max(decision, (decided_at, decision_id)) AS latest_decision,
           arg_max(reason, (decided_at, decision_id)) AS latest_reason,
           count(*) FILTER (WHERE reviewer_rank <= 2) AS n_screeners,
           count(DISTINCT decision) FILTER (WHERE reviewer_rank <= 2) AS n_screener_words,
           any_value(decision) FILTER (WHERE reviewer_rank <= 2) AS screener_decision,
           arg_max(reason, (decided_at, decision_id)) FILTER (WHERE reviewer_rank <= 2 AND coalesce(reason, '') <> '')
               AS screener_reason,
           arg_max(decision, (decided_at, decision_id)) FILTER (WHERE reviewer_rank >= 3) AS arbiter_decision,
           arg_max(reason, (decided_at, decision_id)) FILTER (WHERE reviewer_rank >= 3) AS arbiter_reason,
           list(reviewer || '=' || decision ORDER BY reviewer_rank) AS decisions
    FROM d GROUP BY review_id, as_of_version, record_id, stage
)
SELECT review_id, as_of_version, record_id, stage,
       CASE WHEN mode = 1 THEN latest_decision
            WHEN arbiter_decision IS NOT NULL THEN arbiter_decision
            WHEN n_screeners >= 2 AND n_screener_words = 1 THEN screener_decision END AS decision,
       CASE WHEN mode = 1 THEN latest_reason
            WHEN arbiter_decision IS NOT NULL THEN arbiter_reason
            WHEN n_screeners >= 2 AND n_screener_words = 1 THEN screener_reason END AS reason,
       CASE WHEN mode = 1 THEN 'decided'
            WHEN arbiter_decision IS NOT NULL THEN 'resolved'
            WHEN n_screeners < 2 THEN 'awaiting_second'
            WHEN n_screener_words = 1 THEN 'agreed'
            ELSE 'conflict' END AS state,
       decisions
FROM g;

-- each record's final screening state per stage at each cutoff
CREATE OR REPLACE VIEW v_record_screening_as_of AS
SELECT f.review_id, f.as_of_version, f.record_id,
       any_value(f.decision) FILTER (WHERE f.stage = 'title_abstract') AS title_abstract,
       -- a review screened at title/abstract only includes on that decision
       CASE WHEN coalesce(any_value(s.full_text_stage), true)
            THEN any_value(f.decision) FILTER (WHERE f.stage = 'full_text')
            ELSE any_value(f.decision) FILTER (WHERE f.stage = 'title_abstract') END AS full_text,
       CASE WHEN coalesce(any_value(s.full_text_stage), true)
            THEN any_value(f.reason) FILTER (WHERE f.stage = 'full_text')
            ELSE any_value(f.reason) FILTER (WHERE f.stage = 'title_abstract') END AS full_text_reason,
       any_value(f.reason) FILTER (WHERE f.stage = 'title_abstract') AS title_abstract_reason,
       any_value(f.state) FILTER (WHERE f.stage = 'title_abstract') AS title_abstract_state,
       any_value(f.state) FILTER (WHERE f.stage = 'full_text') AS full_text_state
FROM v_stage_final_as_of f LEFT JOIN v_screening_settings s USING (review_id)
GROUP BY f.review_id, f.as_of_version, f.record_id;

-- each record's FINAL screening decision per stage now (NULL while pending, awaiting a second reviewer or in
-- conflict); v_included_studies is built on this
CREATE OR REPLACE VIEW v_record_screening AS
SELECT review_id, record_id, title_abstract, full_text, full_text_reason,
       title_abstract_reason, title_abstract_state, full_text_state
FROM v_record_screening_as_of WHERE as_of_version IS NULL;

-- two-reviewer disagreements waiting for a third decision
CREATE OR REPLACE VIEW v_screening_conflicts AS
SELECT f.review_id, f.record_id, f.stage, f.decisions, r.title
FROM v_stage_final_as_of f JOIN records r USING (record_id)
WHERE f.as_of_version IS NULL AND f.state = 'conflict';

-- PRISMA 2020 flow counts at each cutoff (cumulative: everything known at that time)
CREATE OR REPLACE VIEW v_prisma_as_of AS
WITH found AS (
    SELECT c.review_id, c.version,
           count(*) FILTER (WHERE r.source = 'pubmed') AS identified_pubmed,
           count(*) FILTER (WHERE r.source = 'ctgov') AS identified_ctgov,
           count(*) AS identified_total
    FROM v_screening_cutoffs c
    JOIN review_records rr ON rr.review_id = c.review_id AND rr.first_seen_at <= c.cutoff
    JOIN records r USING (record_id)
    GROUP BY c.review_id, c.version
), dups AS (
    -- records of a study already screened (see warehouse/screening.py): set aside, never screened twice
    SELECT c.review_id, c.version, count(*) AS duplicates_removed
    FROM v_screening_cutoffs c
    JOIN screening_queue q ON q.review_id = c.review_id AND q.state = 'duplicate' AND q.entered_at <= c.cutoff
    GROUP BY c.review_id, c.version
), s AS (
    SELECT s.*, coalesce(l.study_id, s.record_id) AS study_key,
           (s.title_abstract IN ('include', 'maybe') OR s.full_text IS NOT NULL) AS passed_ta
    FROM v_record_screening_as_of s LEFT JOIN study_links l USING (review_id, record_id)
), counts AS (
    SELECT review_id, as_of_version AS version,
           count(*) FILTER (WHERE title_abstract IS NOT NULL OR full_text IS NOT NULL) AS screened,
           count(*) FILTER (WHERE title_abstract = 'exclude' AND full_text IS NULL) AS excluded_title_abstract,
           count(*) FILTER (WHERE passed_ta) AS full_text_sought,
           count(*) FILTER (WHERE full_text IN ('include', 'exclude')) AS full_text_assessed,
           count(*) FILTER (WHERE full_text = 'exclude') AS excluded_full_text,
           count(*) FILTER (WHERE full_text = 'include') AS included_reports,
           count(DISTINCT study_key) FILTER (WHERE full_text = 'include') AS included_studies,
           count(*) FILTER (WHERE passed_ta AND full_text IS DISTINCT FROM 'include'
                            AND full_text IS DISTINCT FROM 'exclude') AS awaiting_full_text
    FROM s GROUP BY review_id, as_of_version
), reasons AS (
    SELECT review_id, version,
           json_group_object(reason, n) AS excluded_full_text_reasons
    FROM (SELECT review_id, as_of_version AS version,
                 coalesce(nullif(trim(full_text_reason), ''), 'no reason given') AS reason, count(*) AS n
          FROM s WHERE full_text = 'exclude' GROUP BY ALL ORDER BY n DESC, reason)
    GROUP BY review_id, version
)
SELECT c.review_id, c.version, c.cutoff,
       coalesce(f.identified_pubmed, 0) AS identified_pubmed,
       coalesce(f.identified_ctgov, 0) AS identified_ctgov,
       coalesce(f.identified_total, 0) AS identified_total,
       coalesce(d.duplicates_removed, 0) AS duplicates_removed,
       coalesce(n.screened, 0) AS screened,
       coalesce(n.excluded_title_abstract, 0) AS excluded_title_abstract,
       coalesce(n.full_text_sought, 0) AS full_text_sought,
       coalesce(n.full_text_assessed, 0) AS full_text_assessed,
       coalesce(n.excluded_full_text, 0) AS excluded_full_text,
       coalesce(r.excluded_full_text_reasons, '{}'::JSON) AS excluded_full_text_reasons,
       coalesce(n.included_reports, 0) AS included_reports,
       coalesce(n.included_studies, 0) AS included_studies,
       coalesce(n.awaiting_full_text, 0) AS awaiting_full_text
FROM v_screening_cutoffs c
LEFT JOIN found f ON f.review_id = c.review_id AND f.version IS NOT DISTINCT FROM c.version
LEFT JOIN dups d ON d.review_id = c.review_id AND d.version IS NOT DISTINCT FROM c.version
LEFT JOIN counts n ON n.review_id = c.review_id AND n.version IS NOT DISTINCT FROM c.version
LEFT JOIN reasons r ON r.review_id = c.review_id AND r.version IS NOT DISTINCT FROM c.version;

-- PRISMA 2020 counts per review version (cumulative up to the version's created_at), with the previous
-- version's counts beside them; livingmeta/screening/prisma.py shapes previous / new / total for reports
CREATE OR REPLACE VIEW v_prisma_by_version AS
SELECT p.* EXCLUDE (cutoff), p.cutoff AS version_created_at,
       lag(p.version) OVER w AS previous_version,
       lag(p.identified_total) OVER w AS previous_identified_total,
       lag(p.screened) OVER w AS previous_screened,
       lag(p.included_studies) OVER w AS previous_included_studies
FROM v_prisma_as_of p
WHERE p.version IS NOT NULL
WINDOW w AS (PARTITION BY p.review_id ORDER BY p.version);

-- PRISMA 2020 counts per review, current state (`included` = reports included at full text, as in 0002)
CREATE OR REPLACE VIEW v_prisma_counts AS
SELECT review_id, identified_pubmed, identified_ctgov, identified_total, duplicates_removed, screened,
       excluded_title_abstract, full_text_assessed, excluded_full_text, included_reports AS included,
       included_studies, included_reports, full_text_sought, excluded_full_text_reasons, awaiting_full_text
FROM v_prisma_as_of WHERE version IS NULL;

-- what waits for people, best first: records that changed since they were screened lead (a retraction
-- must be seen before anything new), out-of-scope records trail
CREATE OR REPLACE VIEW v_screening_queue AS
SELECT q.review_id, q.record_id, r.source, r.source_id, r.title, r.year, r.journal,
       q.label, q.reasons, q.change_note, q.score, q.ranker, q.stage, q.entered_at,
       row_number() OVER (PARTITION BY q.review_id
                          ORDER BY q.label = 'changed' DESC, q.label = 'out_of_scope', q.score DESC NULLS LAST,
                                   q.entered_at, q.record_id) AS rank
FROM screening_queue q JOIN records r USING (record_id)
WHERE q.state = 'pending';

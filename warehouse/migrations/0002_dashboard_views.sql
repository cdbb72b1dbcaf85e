-- 0002: views for dashboards (documented column by column in warehouse/README.md).

-- the latest decision per record, reviewer and stage
CREATE VIEW v_current_decisions AS
SELECT * EXCLUDE (rn) FROM (
    SELECT d.*, row_number() OVER (
        PARTITION BY review_id, record_id, reviewer, stage ORDER BY decided_at DESC, decision_id DESC) AS rn
    FROM screening_decisions d
) WHERE rn = 1;

-- every published estimate, one row per review version and analysis
CREATE VIEW v_estimate_history AS
SELECT v.review_id, v.version, v.created_at AS version_created_at, v.as_of,
       e.analysis_id, e.measure, e.method, e.test, e.k, e.participants,
       coalesce(e.estimate_bt, e.estimate) AS estimate,
       coalesce(e.ci_lower_bt, e.ci_lower) AS ci_lower,
       coalesce(e.ci_upper_bt, e.ci_upper) AS ci_upper,
       coalesce(e.pi_lower_bt, e.pi_lower) AS pi_lower,
       coalesce(e.pi_upper_bt, e.pi_upper) AS pi_upper,
       e.estimate AS log_estimate, e.ci_lower AS log_ci_lower, e.ci_upper AS log_ci_upper,
       e.p_value, e.tau2, e.i2, e.q, e.tsa_status, vr.analysis_run_id
FROM review_versions v
JOIN review_version_runs vr USING (review_id, version)
JOIN estimates e ON e.analysis_run_id = vr.analysis_run_id;

-- the estimates of each review's latest version
CREATE VIEW v_current_estimates AS
SELECT h.* FROM v_estimate_history h
JOIN (SELECT review_id, max(version) AS version FROM review_versions GROUP BY review_id) latest
  USING (review_id, version);

-- what waits for people, best first
CREATE VIEW v_screening_queue AS
SELECT q.review_id, q.record_id, r.source, r.source_id, r.title, r.year, r.journal,
       q.label, q.reasons, q.change_note, q.score, q.ranker, q.stage, q.entered_at,
       row_number() OVER (PARTITION BY q.review_id ORDER BY q.label = 'out_of_scope', q.score DESC NULLS LAST, q.entered_at, q.record_id) AS rank
FROM screening_queue q JOIN records r USING (record_id)
WHERE q.state = 'pending';

-- PRISMA 2020 counts per review, current state
CREATE VIEW v_prisma_counts AS
WITH found AS (
    SELECT rr.review_id, r.source, count(*) AS n
    FROM review_records rr JOIN records r USING (record_id)
    GROUP BY ALL
), per_review AS (
    SELECT review_id,
           sum(n) FILTER (WHERE source = 'pubmed') AS identified_pubmed,
           sum(n) FILTER (WHERE source = 'ctgov') AS identified_ctgov,
           sum(n) AS identified_total
    FROM found GROUP BY review_id
), linked AS (
    -- a study found by two sources or twice is screened once: records beyond the first per study are duplicates
    SELECT review_id, count(*) - count(DISTINCT study_id) AS duplicates
    FROM study_links GROUP BY review_id
), ta AS (
    SELECT review_id, record_id,
           bool_or(decision = 'include' OR decision = 'maybe') AS passed
    FROM v_current_decisions WHERE stage = 'title_abstract' GROUP BY ALL
), ft AS (
    SELECT review_id, record_id, bool_or(decision = 'include') AS included,
           any_value(reason) FILTER (WHERE decision = 'exclude') AS reason
    FROM v_current_decisions WHERE stage = 'full_text' GROUP BY ALL
)
SELECT p.review_id,
       coalesce(p.identified_pubmed, 0) AS identified_pubmed,
       coalesce(p.identified_ctgov, 0) AS identified_ctgov,
       coalesce(p.identified_total, 0) AS identified_total,
       coalesce(l.duplicates, 0) AS duplicates_removed,
       (SELECT count(*) FROM ta WHERE ta.review_id = p.review_id) AS screened,
       (SELECT count(*) FROM ta WHERE ta.review_id = p.review_id AND NOT passed) AS excluded_title_abstract,
       (SELECT count(*) FROM ft WHERE ft.review_id = p.review_id) AS full_text_assessed,
       (SELECT count(*) FROM ft WHERE ft.review_id = p.review_id AND NOT included) AS excluded_full_text,
       (SELECT count(*) FROM ft WHERE ft.review_id = p.review_id AND included) AS included
FROM per_review p LEFT JOIN linked l USING (review_id);

CREATE VIEW v_alerts AS
SELECT a.alert_id, a.review_id, a.created_at, a.kind, a.severity, a.version, a.title, a.body,
       count(d.channel) AS channels,
       count(d.channel) FILTER (WHERE d.status = 'delivered') AS delivered,
       count(d.channel) FILTER (WHERE d.status = 'failed') AS failed
FROM alerts a LEFT JOIN alert_deliveries d USING (alert_id)
GROUP BY ALL;

-- each record's screening state per stage: the latest decision across reviewers (single-reviewer mode;
-- two-reviewer mode replaces this view with conflict handling)
CREATE VIEW v_record_screening AS
SELECT review_id, record_id,
       max_by(decision, decided_at) FILTER (WHERE stage = 'title_abstract') AS title_abstract,
       max_by(decision, decided_at) FILTER (WHERE stage = 'full_text') AS full_text,
       max_by(reason, decided_at) FILTER (WHERE stage = 'full_text') AS full_text_reason
FROM v_current_decisions GROUP BY review_id, record_id;

-- studies that enter the analyses: at least one linked record included at full text;
-- `retracted` is true when any included record of the study is retracted (the study then leaves the analyses)
CREATE VIEW v_included_studies AS
SELECT l.review_id, l.study_id,
       list(l.record_id ORDER BY l.record_id) AS record_ids,
       bool_or(r.retracted) AS retracted,
       bool_or(r.deleted) AS deleted
FROM study_links l
JOIN v_record_screening s USING (review_id, record_id)
JOIN records r USING (record_id)
WHERE s.full_text = 'include'
GROUP BY l.review_id, l.study_id;

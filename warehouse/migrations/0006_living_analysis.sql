-- 0006: living analysis — extraction history views and the link from an accepted suggestion to its row.

-- an active row created by accepting a registry suggestion cites the suggested row it came from
ALTER TABLE extraction_rows ADD COLUMN derived_from BIGINT;

-- the extraction rows that count now: active and not superseded by a later correction
-- (extraction_rows is append-only: a correction is a new row whose `supersedes` names the old one)
CREATE VIEW v_current_extraction AS
SELECT e.* FROM extraction_rows e
WHERE e.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM extraction_rows c WHERE c.supersedes = e.row_id AND c.status = 'active');

-- one row per review version and analysis: what changed compared with the previous version
CREATE VIEW v_estimate_diffs AS
SELECT d.review_id, d.from_version, d.to_version, v.created_at AS version_created_at, d.analysis_id,
       d.changes, d.studies_added, d.studies_removed, d.old, d.new
FROM estimate_diffs d JOIN review_versions v ON v.review_id = d.review_id AND v.version = d.to_version;

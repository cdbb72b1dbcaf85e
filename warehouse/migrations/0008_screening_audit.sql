-- 0008: PRISMA counts frozen per review version; registry suggestions retired when results are re-posted.

-- PRISMA 2020 counts of a review version as they stood when the version was created
-- (`warehouse.screening.freeze_prisma`). v_prisma_as_of recomputes older versions from today's study links,
-- so a merge or split after a version would otherwise rewrite that version's "studies included"; a frozen row
-- never changes. Columns as in v_prisma_as_of (0005).
CREATE TABLE prisma_versions (
    review_id     VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    version_created_at TIMESTAMPTZ,
    identified_pubmed INTEGER NOT NULL,
    identified_ctgov INTEGER NOT NULL,
    identified_total INTEGER NOT NULL,
    duplicates_removed INTEGER NOT NULL,
    screened      INTEGER NOT NULL,
    excluded_title_abstract INTEGER NOT NULL,
    full_text_sought INTEGER NOT NULL,
    full_text_assessed INTEGER NOT NULL,
    excluded_full_text INTEGER NOT NULL,
    excluded_full_text_reasons JSON,
    included_reports INTEGER NOT NULL,
    included_studies INTEGER NOT NULL,
    awaiting_full_text INTEGER NOT NULL,
    frozen_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, version)
);

-- PRISMA 2020 counts per review version: the frozen row when there is one (`counts_frozen_at` set), else
-- recomputed from the decisions and records known at the version's created_at (`counts_frozen_at` NULL);
-- the previous version's counts beside them
CREATE OR REPLACE VIEW v_prisma_by_version AS
WITH p AS (
    SELECT f.* EXCLUDE (frozen_at), f.frozen_at AS counts_frozen_at FROM prisma_versions f
    UNION ALL BY NAME
    SELECT a.* EXCLUDE (cutoff), a.cutoff AS version_created_at, NULL::TIMESTAMPTZ AS counts_frozen_at
    FROM v_prisma_as_of a
    WHERE a.version IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM prisma_versions f WHERE f.review_id = a.review_id AND f.version = a.version)
)
SELECT p.review_id, p.version, p.identified_pubmed, p.identified_ctgov, p.identified_total, p.duplicates_removed,
       p.screened, p.excluded_title_abstract, p.full_text_sought, p.full_text_assessed, p.excluded_full_text,
       p.excluded_full_text_reasons, p.included_reports, p.included_studies, p.awaiting_full_text,
       p.version_created_at, p.counts_frozen_at,
       lag(p.version) OVER w AS previous_version,
       lag(p.identified_total) OVER w AS previous_identified_total,
       lag(p.screened) OVER w AS previous_screened,
       lag(p.included_studies) OVER w AS previous_included_studies
FROM p
WINDOW w AS (PARTITION BY p.review_id ORDER BY p.version);

-- registry_suggestions.retired_at: when a later version of the registry record was read and no longer carries
-- this row's numbers (results corrected or re-posted); the extraction row then has status 'superseded'
ALTER TABLE registry_suggestions ADD COLUMN retired_at TIMESTAMPTZ;
ALTER TABLE registry_suggestions ADD COLUMN retired_by_version INTEGER;

-- a version's PRISMA counts as they stand at its creation, stored once (a version frozen before keeps its row).
-- Params: frozen_at, review_id, version. {cols} is the list of count columns (screening._PRISMA_COLUMNS).
INSERT INTO prisma_versions (review_id, version, version_created_at, {cols}, frozen_at)
SELECT review_id, version, cutoff, {cols}, ?
FROM v_prisma_as_of a
WHERE a.review_id = ? AND a.version = ?
  AND NOT EXISTS (SELECT 1 FROM prisma_versions f WHERE f.review_id = a.review_id AND f.version = a.version)
RETURNING version

-- 0011: what each `livingmeta screen export` gave away, so that a file coming back from ASReview LAB is read
-- against it. ASReview takes the labels of an exported file as prior knowledge and writes them back in its
-- export beside the reviewer's own; an import skips a label that only repeats the prior it was given
-- (`livingmeta.screening.decisions`), which these rows make possible. The export id travels in the file
-- (CSV column `livingmeta_export`, RIS note "livingmeta_export: N").

CREATE SEQUENCE seq_screening_export START 1;
CREATE TABLE screening_exports (
    export_id     BIGINT PRIMARY KEY DEFAULT nextval('seq_screening_export'),
    review_id     VARCHAR NOT NULL,
    exported_at   TIMESTAMPTZ NOT NULL,
    format        VARCHAR NOT NULL,       -- csv | ris
    n_records     INTEGER NOT NULL
);

-- the labels an export carried (records exported without a label have no row)
CREATE TABLE screening_export_labels (
    export_id     BIGINT NOT NULL,
    record_id     VARCHAR NOT NULL,
    label         INTEGER NOT NULL,       -- 1 relevant, 0 irrelevant, as written in the file
    decision      VARCHAR NOT NULL,       -- the final title/abstract decision it stood for (include | exclude)
    PRIMARY KEY (export_id, record_id)
);

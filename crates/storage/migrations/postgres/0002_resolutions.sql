-- Duplicate resolution decisions (issue 5) and the indexes of the quality report.
-- See the SQLite migration for the meaning of each column.

CREATE TABLE resolutions (
    id             BIGSERIAL   PRIMARY KEY,
    record_id      BIGINT      NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL,
    decided_by     TEXT        NOT NULL,
    method         TEXT        NOT NULL,
    policy         TEXT,
    winner_batch   BIGINT      NOT NULL,
    winner_line    BIGINT      NOT NULL,
    previous_batch BIGINT      NOT NULL,
    previous_line  BIGINT      NOT NULL,
    pending        BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE INDEX resolutions_record ON resolutions (record_id, id);

CREATE INDEX records_conflicts ON records (id) WHERE versions > 1 OR pending;

-- The days with a VALID record per building, in order, for the report's gaps, completeness
-- and flatlines (read from this index without sorting; VALID records always have a key).
CREATE INDEX records_valid_days ON records (building_id, date, provider, consumption)
    WHERE status = 'VALID' AND content_key IS NULL;

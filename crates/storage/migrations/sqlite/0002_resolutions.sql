-- Duplicate resolution decisions (issue 5) and the indexes of the quality report.

-- Every decision about which version of a record wins: who or what decided, when, how
-- ('policy' with its name, or 'explicit'), the winner and the previous winner. Append-only.
CREATE TABLE resolutions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id      INTEGER NOT NULL,
    decided_at     INTEGER NOT NULL,
    decided_by     TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    policy         TEXT,
    winner_batch   INTEGER NOT NULL,
    winner_line    INTEGER NOT NULL,
    previous_batch INTEGER NOT NULL,
    previous_line  INTEGER NOT NULL,
    pending        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX resolutions_record ON resolutions (record_id, id);

-- Conflict groups (a few per thousand records): listed without scanning every record.
CREATE INDEX records_conflicts ON records (id) WHERE versions > 1 OR pending <> 0;

-- The days with a VALID record per building, in order, for the report's gaps, completeness
-- and flatlines (read from this index without sorting; VALID records always have a key).
CREATE INDEX records_valid_days ON records (building_id, date, provider, consumption)
    WHERE status = 'VALID' AND content_key IS NULL;

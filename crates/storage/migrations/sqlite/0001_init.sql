-- emdp schema, SQLite flavour. Times are Unix epoch milliseconds (UTC); dates are
-- 'YYYY-MM-DD' text; `reasons` is a bit set of reason codes (bit i = the i-th code of
-- emdp's reason list, see GET /api/v1/rules).

-- One ingestion: a file, a request body, a batch of MQTT messages.
CREATE TABLE batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    header      TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    rows_stored INTEGER NOT NULL DEFAULT 0,
    summary     TEXT
);

-- The curated store: one record per key, showing its winning version.
CREATE TABLE records (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    building_id    TEXT,
    date           TEXT,
    provider       TEXT,
    content_key    TEXT,
    consumption    REAL,
    temperature    REAL,
    status         TEXT    NOT NULL,
    reasons        INTEGER NOT NULL,
    fp_consumption INTEGER NOT NULL,
    fp_temperature INTEGER NOT NULL,
    winner_batch   INTEGER NOT NULL,
    winner_line    INTEGER NOT NULL,
    versions       INTEGER NOT NULL,
    pending        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
-- The duplicate key of readings; it also serves time-range queries per building.
CREATE UNIQUE INDEX records_reading ON records (building_id, date, provider) WHERE content_key IS NULL;
-- Records without a usable key are identified by a hash of their content.
CREATE UNIQUE INDEX records_content ON records (content_key) WHERE content_key IS NOT NULL;

-- The raw store: every payload exactly as received, append-only, with how it was classified
-- on arrival and the record it became part of. Typed values and fingerprints are kept for
-- versions (admission 'new' or 'conflicting'), which conflict resolution may pick.
-- Clustered by record: a record's history is one range scan, and the rows of new records
-- (increasing ids) are appended rather than inserted into the middle of an index.
CREATE TABLE raw_records (
    batch_id            INTEGER NOT NULL,
    line                INTEGER NOT NULL,
    received_at         INTEGER NOT NULL,
    payload             TEXT    NOT NULL,
    parse_error         TEXT,
    record_id           INTEGER NOT NULL,
    admission           TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    reasons             INTEGER NOT NULL,
    building_id         TEXT,
    date                TEXT,
    provider            TEXT,
    consumption         REAL,
    temperature         REAL,
    fp_consumption      INTEGER,
    fp_temperature      INTEGER,
    original_id         TEXT,
    original_created_at INTEGER,
    PRIMARY KEY (record_id, batch_id, line)
) WITHOUT ROWID;

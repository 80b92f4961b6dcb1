-- emdp schema, PostgreSQL flavour. See the SQLite migration for the meaning of each column.
-- Designed for time-range queries per building ((building_id, date) leads the key index)
-- and for growth: records and raw_records can be range-partitioned by date / batch, or turned
-- into TimescaleDB hypertables or Citus distributed tables (distribution column building_id),
-- without changing the queries.

CREATE TABLE batches (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT        NOT NULL,
    format      TEXT        NOT NULL,
    header      TEXT,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    rows_stored BIGINT      NOT NULL DEFAULT 0,
    summary     JSONB
);

CREATE TABLE records (
    id             BIGSERIAL PRIMARY KEY,
    building_id    TEXT,
    date           DATE,
    provider       TEXT,
    content_key    TEXT,
    consumption    DOUBLE PRECISION,
    temperature    DOUBLE PRECISION,
    status         TEXT        NOT NULL,
    reasons        INTEGER     NOT NULL,
    fp_consumption BIGINT      NOT NULL,
    fp_temperature BIGINT      NOT NULL,
    winner_batch   BIGINT      NOT NULL,
    winner_line    BIGINT      NOT NULL,
    versions       INTEGER     NOT NULL,
    pending        BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX records_reading ON records (building_id, date, provider) WHERE content_key IS NULL;
CREATE UNIQUE INDEX records_content ON records (content_key) WHERE content_key IS NOT NULL;

CREATE TABLE raw_records (
    batch_id            BIGINT      NOT NULL,
    line                BIGINT      NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    payload             TEXT        NOT NULL,
    parse_error         TEXT,
    record_id           BIGINT,
    admission           TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    reasons             INTEGER     NOT NULL,
    building_id         TEXT,
    date                DATE,
    provider            TEXT,
    consumption         DOUBLE PRECISION,
    temperature         DOUBLE PRECISION,
    fp_consumption      BIGINT,
    fp_temperature      BIGINT,
    original_id         TEXT,
    original_created_at TIMESTAMPTZ,
    PRIMARY KEY (batch_id, line)
);
CREATE INDEX raw_records_record ON raw_records (record_id);

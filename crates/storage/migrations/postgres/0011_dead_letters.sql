-- Dead letters (issue 27): see the SQLite migration. Times are epoch milliseconds (BIGINT), as
-- in the alert tables, so that one statement serves both databases.
CREATE TABLE dead_letters (
    id               BIGSERIAL PRIMARY KEY,
    topic            TEXT   NOT NULL,
    payload_encoding TEXT   NOT NULL CHECK (payload_encoding IN ('utf-8', 'base64')),
    payload          TEXT   NOT NULL,
    received_at      BIGINT NOT NULL,
    error            TEXT   NOT NULL,
    attempts         BIGINT NOT NULL,
    dead_at          BIGINT NOT NULL
);

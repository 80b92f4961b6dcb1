-- Dead letters (issue 27): MQTT messages whose store write kept failing with an error of their
-- own (not a database outage) after the subscriber's bounded attempts. Kept raw with the last
-- error so that nothing accepted is lost, then acknowledged. `payload` is the message when it
-- is UTF-8, else its base64 (`payload_encoding`). Times are epoch milliseconds.
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    topic            TEXT    NOT NULL,
    payload_encoding TEXT    NOT NULL CHECK (payload_encoding IN ('utf-8', 'base64')),
    payload          TEXT    NOT NULL,
    received_at      INTEGER NOT NULL,
    error            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    dead_at          INTEGER NOT NULL
);

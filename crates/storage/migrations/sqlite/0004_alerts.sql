-- Alert rules, alerts, the alert event log (SSE ids) and webhook delivery attempts (issue 8).
-- Times are milliseconds since the Unix epoch, like the other tables. `rule_id` is not a
-- foreign key: deleting a rule keeps its alerts.
CREATE TABLE alert_rules (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    severity         TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    cooldown_seconds INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         INTEGER NOT NULL,
    rule_name       TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    building        TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    fired_at        INTEGER NOT NULL,
    resolved_at     INTEGER,
    acknowledged_at INTEGER,
    message         TEXT    NOT NULL,
    details         TEXT    NOT NULL
);
CREATE INDEX alerts_state ON alerts (state, id);
CREATE INDEX alerts_rule ON alerts (rule_id, id);

CREATE TABLE alert_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    payload  TEXT    NOT NULL
);

CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq   INTEGER NOT NULL,
    alert_id    INTEGER NOT NULL,
    url         TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    success     INTEGER NOT NULL,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries (alert_id, id);

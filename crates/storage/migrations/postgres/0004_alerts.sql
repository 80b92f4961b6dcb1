-- Alert rules, alerts, the alert event log (SSE ids) and webhook delivery attempts (issue 8).
-- Times are milliseconds since the Unix epoch (BIGINT), as on SQLite, so that both adapters
-- share their SQL (crates/storage/src/alerts_sql.rs). `rule_id` is not a
-- foreign key: deleting a rule keeps its alerts.
CREATE TABLE alert_rules (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    severity         TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    cooldown_seconds BIGINT  NOT NULL,
    enabled          BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    rule_id         BIGINT  NOT NULL,
    rule_name       TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    building        TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    fired_at        BIGINT  NOT NULL,
    resolved_at     BIGINT,
    acknowledged_at BIGINT,
    message         TEXT    NOT NULL,
    details         TEXT    NOT NULL
);
CREATE INDEX alerts_state ON alerts (state, id);
CREATE INDEX alerts_rule ON alerts (rule_id, id);

CREATE TABLE alert_events (
    seq      BIGSERIAL PRIMARY KEY,
    alert_id BIGINT  NOT NULL,
    kind     TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    payload  TEXT    NOT NULL
);

CREATE TABLE webhook_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    event_seq   BIGINT  NOT NULL,
    alert_id    BIGINT  NOT NULL,
    url         TEXT    NOT NULL,
    attempt     BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    status      BIGINT,
    success     BIGINT  NOT NULL,
    error       TEXT,
    duration_ms BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries (alert_id, id);

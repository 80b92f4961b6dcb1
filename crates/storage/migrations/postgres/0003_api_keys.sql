-- API keys (issue 6): only the SHA-256 of each key is stored, with a prefix for display.
CREATE TABLE api_keys (
    id           BIGSERIAL   PRIMARY KEY,
    name         TEXT        NOT NULL UNIQUE,
    role         TEXT        NOT NULL CHECK (role IN ('reader', 'ingester', 'admin')),
    hash         TEXT        NOT NULL UNIQUE,
    prefix       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- Running counts for the quality report and the dashboard's overview (issues 5 and 9).
--
-- SQLite scans a million records in one thread (no parallel scans) and its GROUP BY sorts
-- them: the report's count statements took 0.4-1.0 s each. These tallies answer the same
-- counts from a few thousand rows, whenever the filter has no building and no batch
-- (those are served by indexes). PostgreSQL keeps aggregating live, with parallel scans.

-- The curated records per day, provider, status, reasons and duplicate flags. A record
-- without a date or a provider counts under ''. Kept by the triggers below on every insert,
-- update and delete, whatever writes them (ingest, edits, resolutions, deletions); rows that
-- fall to 0 stay and are skipped by readers.
CREATE TABLE record_tally (
    date     TEXT    NOT NULL,
    provider TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    reasons  INTEGER NOT NULL,
    conflict INTEGER NOT NULL,
    pending  INTEGER NOT NULL,
    keyless  INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (date, provider, status, reasons, conflict, pending, keyless)
) WITHOUT ROWID;

INSERT INTO record_tally
SELECT COALESCE(date, ''), COALESCE(provider, ''), status, reasons, versions > 1, pending <> 0,
       content_key IS NOT NULL, COUNT(*)
FROM records GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TRIGGER record_tally_insert AFTER INSERT ON records BEGIN
    INSERT INTO record_tally VALUES (COALESCE(NEW.date, ''), COALESCE(NEW.provider, ''), NEW.status,
        NEW.reasons, NEW.versions > 1, NEW.pending <> 0, NEW.content_key IS NOT NULL, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER record_tally_delete AFTER DELETE ON records BEGIN
    UPDATE record_tally SET n = n - 1
    WHERE date = COALESCE(OLD.date, '') AND provider = COALESCE(OLD.provider, '') AND status = OLD.status
      AND reasons = OLD.reasons AND conflict = (OLD.versions > 1) AND pending = (OLD.pending <> 0)
      AND keyless = (OLD.content_key IS NOT NULL);
END;

CREATE TRIGGER record_tally_update
AFTER UPDATE OF date, provider, status, reasons, versions, pending, content_key ON records BEGIN
    UPDATE record_tally SET n = n - 1
    WHERE date = COALESCE(OLD.date, '') AND provider = COALESCE(OLD.provider, '') AND status = OLD.status
      AND reasons = OLD.reasons AND conflict = (OLD.versions > 1) AND pending = (OLD.pending <> 0)
      AND keyless = (OLD.content_key IS NOT NULL);
    INSERT INTO record_tally VALUES (COALESCE(NEW.date, ''), COALESCE(NEW.provider, ''), NEW.status,
        NEW.reasons, NEW.versions > 1, NEW.pending <> 0, NEW.content_key IS NOT NULL, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

-- The raw payloads per batch, status on arrival, admission and reasons. Raw rows are
-- append-only and written by one statement (the adapter's `insert_raw`), which adds each
-- chunk's counts here in the same transaction (one upsert per group, not a trigger per row).
CREATE TABLE raw_tally (
    batch_id  INTEGER NOT NULL,
    status    TEXT    NOT NULL,
    admission TEXT    NOT NULL,
    reasons   INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (batch_id, status, admission, reasons)
) WITHOUT ROWID;

INSERT INTO raw_tally
SELECT batch_id, status, admission, reasons, COUNT(*) FROM raw_records GROUP BY 1, 2, 3, 4;

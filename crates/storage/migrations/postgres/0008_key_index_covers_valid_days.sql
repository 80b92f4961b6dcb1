-- One building-ordered index instead of two: the key index carries the status and the
-- consumption (INCLUDE: stored in its leaf entries, not part of the key or of its uniqueness),
-- and records_valid_series goes.
--
-- Every record went into both indexes, each a descent of its own through text keys: the
-- second was the most expensive part of copying a record. The quality report and the
-- analyses read VALID days per building from the key index alone (an index-only scan that
-- filters on the included status), in the order they did before for completeness and per
-- building and provider with an incremental sort of each building's days for flat lines.
-- bench/ingest.sh and bench/report.sh measured a 1,000,000-row store on a 2-vCPU VM: see
-- BENCHMARKS.md (ingest and quality report).
DROP INDEX records_valid_series;
DROP INDEX records_reading;
CREATE UNIQUE INDEX records_reading ON records (building_id, date, provider) INCLUDE (status, consumption)
    WHERE content_key IS NULL;

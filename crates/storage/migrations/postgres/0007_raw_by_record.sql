-- The raw store's primary key leads with the record, as SQLite's has from the start:
-- (record_id, batch_id, line) instead of (batch_id, line) plus an index on record_id.
--
-- An ingest writes its rows in key order (building, day, provider), so a chunk's lines are
-- spread over the whole file (a meter export lists every building day after day), and every
-- row went into the middle of the (batch_id, line) index: page splits all over it, and a full
-- page image in the WAL for every page touched after a checkpoint. Record ids are drawn in key
-- order, so this key is appended to instead, and it serves what the record_id index served (a
-- record's history, the versions of a key, the rows of a record in a batch). Every read of
-- the raw store goes through its record; a (batch, line) is still written once, by the
-- chunk that holds it, under the chunk's transaction and the batch's progress row.
-- bench/ingest.sh measured the 1,000,000-row first run on a 2-vCPU VM: see BENCHMARKS.md.
ALTER TABLE raw_records DROP CONSTRAINT raw_records_pkey;
DROP INDEX raw_records_record;
ALTER TABLE raw_records ALTER COLUMN record_id SET NOT NULL;
ALTER TABLE raw_records ADD PRIMARY KEY (record_id, batch_id, line);

-- The column mapping a batch was read by, and an index of the batches never finished; see
-- the SQLite migration.
ALTER TABLE batches ADD COLUMN columns TEXT;
CREATE INDEX batches_unfinished ON batches (id) WHERE finished_at IS NULL;

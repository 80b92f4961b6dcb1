-- The column mapping a batch was read by; see the SQLite migration.
ALTER TABLE batches ADD COLUMN columns TEXT;

-- The column mapping a batch was read by (`emdp ingest --column`, the API's `column`
-- parameter), as `building_id=site, date=day, ...`; NULL when every field was read under its
-- own name. With the header, it is what reading a raw payload again needs: the payload and
-- the header alone do not say which column a field came from.
ALTER TABLE batches ADD COLUMN columns TEXT;

-- The batches never finished (cut short by a crash or a kill, or being written), for
-- `emdp batches list --unfinished` and `GET /api/v1/batches?unfinished=true` without reading
-- every batch: MQTT alone opens one per topic every 20 ms under load.
CREATE INDEX batches_unfinished ON batches (id) WHERE finished_at IS NULL;

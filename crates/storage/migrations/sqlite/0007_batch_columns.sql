-- The column mapping a batch was read by (`emdp ingest --column`, the API's `column`
-- parameter), as `building_id=site, date=day, ...`; NULL when every field was read under its
-- own name. With the header, it is what reading a raw payload again needs: the payload and
-- the header alone do not say which column a field came from.
ALTER TABLE batches ADD COLUMN columns TEXT;

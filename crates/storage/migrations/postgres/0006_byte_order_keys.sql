-- Building ids, providers and content keys compare byte by byte (the "C" collation).
--
-- Under the database's default collation (C.UTF-8 or en_US.UTF-8 on most servers) every
-- comparison in the key indexes went through strcoll(): bench/schema_floor.sh measured
-- 12.3 µs per row for PostgreSQL alone writing emdp's rows, 10.8 µs with "C". Byte order is
-- also the order SQLite's BINARY collation gives, so both databases list and page records in
-- the same order. Equality is unchanged. Indexes on these columns are rebuilt; the tables are
-- not rewritten.
ALTER TABLE records
    ALTER COLUMN building_id TYPE TEXT COLLATE "C",
    ALTER COLUMN provider TYPE TEXT COLLATE "C",
    ALTER COLUMN content_key TYPE TEXT COLLATE "C";
ALTER TABLE raw_records
    ALTER COLUMN building_id TYPE TEXT COLLATE "C",
    ALTER COLUMN provider TYPE TEXT COLLATE "C";

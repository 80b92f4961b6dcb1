-- New records reach `record_tally` (migration 0005) from emdp's insert instead of a trigger.
--
-- The trigger ran one upsert per inserted record: 1.4 s of the 6.8 s SQLite alone spent
-- writing the 1,000,000 records of the benchmark data set (bench/schema_floor.sh). The only
-- statement that inserts records (`SqliteIngest::insert_absent`) now counts the rows it
-- inserted per tally group and upserts each group once, in the same transaction. Updates
-- and deletions keep their triggers, whatever writes them. Records inserted by other means
-- (a sqlite3 shell) are not counted: writes go through emdp.
DROP TRIGGER record_tally_insert;

#!/usr/bin/env bash
# Benchmark: what the databases themselves spend writing emdp's rows, without emdp.
#
# The 1,000,000-row data set is loaded into a staging table (not timed), then copied into a
# fresh emdp schema (`emdp migrate`) by the database's own SQL, in transactions of 50,000 rows
# as `emdp ingest` writes them: once into the full schema, then with parts of it removed, to
# show what each index costs. SQLite's record tallies are counted by emdp and upserted once per
# group (a few hundred rows a chunk), so they are left out. Whatever emdp does on top, an
# ingest cannot be faster than the "records + raw, full schema" line. Values other than the CSV's (statuses,
# fingerprints, ids) are synthetic; the index keys, the row sizes and the order are real.
#
# The SQLite full schema once more with the rows in key order (building, day, provider), as
# `emdp ingest` stores a file into SQLite: the floor of its design.
#
# Two more ways each, the fastest these databases have, to set the floor a design could reach:
# - SQLite: the building-ordered indexes built after the load (from rows already free of
#   duplicate keys), as a bulk load into an empty store could do;
# - PostgreSQL: the rows of the full-schema line, exported per chunk in `COPY`'s binary format
#   and copied back into a fresh schema, by one session and by two at once (one per core),
#   into the full schema and into one whose key index is built after the load.
#
# Each line also gives the CPU time the whole machine spent (every process, all cores): at a
# target of R rows/s, a run has ROWS / R seconds of each core.
#
# Run from the repo root:   bash bench/schema_floor.sh
#
# Environment knobs:
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres   (creates and drops its database)
#   BUILDINGS, DAYS, SEED, DATA, SKIP_BUILD, EMDP   see bench/common.sh (the same data set
#                                       as bench/ingest.sh by default)
#   ONLY=sqlite|postgres                run one database only
#   CHUNK=50000                         rows per transaction (emdp ingest's chunk size)
#
# Needs the sqlite3 shell (Debian package sqlite3: its SQLite may be older than the one
# built into emdp) and psql.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ONLY="${ONLY:-}"
CHUNK="${CHUNK:-50000}"

command -v sqlite3 >/dev/null || die "the sqlite3 shell is required (apt install sqlite3)"
command -v psql >/dev/null || die "psql is required"
prepare
ROWS=$(($(wc -l <"$DATA") - 1))
CHUNKS=$(((ROWS + CHUNK - 1) / CHUNK))

echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "data: $DATA ($ROWS rows), transactions of $CHUNK rows"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %-52s %9s %12s %9s %8s\n' database variant wall rows/s "µs/row" "CPU-s"

# report DATABASE VARIANT START-TIME START-TICKS: one line, timed from START to now.
report() {
  local end ticks
  end=$(seconds)
  ticks=$(busy_ticks)
  awk -v d="$1" -v v="$2" -v w="$(echo "$end - $3" | bc)" -v n="$ROWS" -v c="$(cpu_seconds "$4" "$ticks")" \
    'BEGIN { printf "%-12s %-52s %8.2fs %12.0f %9.1f %8s\n", d, v, w, n / w, w * 1e6 / n, c }'
}

# The statements of one variant, one transaction per chunk: $1 = records | raw | both |
# records_plain (no ON CONFLICT: for a schema without the key index) | bulk (records + raw,
# the records from `su` without ON CONFLICT) | keyed (records + raw in key order, as emdp
# ingests into SQLite), $2 = sqlite | postgres. `st` holds the CSV with its line number as
# `ln` (the ingest order), `su` its rows with a key seen first, `sk` (SQLite only) its rows
# numbered in key order as `ln`.
RECORD_COLUMNS="building_id, date, provider, content_key, consumption, temperature, status, reasons, \
fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at"
RAW_COLUMNS="batch_id, line, received_at, payload, parse_error, record_id, admission, status, reasons, \
building_id, date, provider, consumption, temperature, fp_consumption, fp_temperature"
statements() {
  local what="$1" flavour="$2" begin conflict cast_c cast_t now status payload from=st raw_from=st
  if [[ "$flavour" == sqlite ]]; then
    begin="BEGIN IMMEDIATE"
    conflict="ON CONFLICT DO NOTHING"
    cast_c="CAST(consumption AS REAL)" cast_t="CAST(temperature AS REAL)" now=1700000000000
    payload="building_id || ',' || date || ',' || consumption || ',' || temperature || ',' || provider"
  else
    begin="BEGIN"
    conflict="ON CONFLICT (building_id, date, provider) WHERE content_key IS NULL DO NOTHING"
    cast_c="consumption" cast_t="temperature" now="now()"
    payload="concat_ws(',', building_id, date, consumption, temperature, provider)"
  fi
  [[ "$what" == records_plain || "$what" == bulk ]] && conflict=""
  [[ "$what" == bulk ]] && from=su
  [[ "$what" == keyed ]] && from=sk raw_from=sk
  # About 90 % VALID, as in the generated data set.
  status="CASE WHEN ln % 10 = 0 THEN 'INCOMPLETE' ELSE 'VALID' END"
  for ((i = 0; i < CHUNKS; i++)); do
    local lo=$((i * CHUNK + 1)) hi=$(((i + 1) * CHUNK))
    echo "$begin;"
    if [[ "$what" != raw ]]; then
      echo "INSERT INTO records ($RECORD_COLUMNS) SELECT building_id, date, provider, NULL, $cast_c, $cast_t, \
$status, 0, ln * 7, ln * 13, 1, ln, 1, false, $now, $now FROM $from WHERE ln BETWEEN $lo AND $hi \
ORDER BY building_id, date, provider $conflict;"
    fi
    if [[ "$what" == raw || "$what" == both || "$what" == bulk || "$what" == keyed ]]; then
      echo "INSERT INTO raw_records ($RAW_COLUMNS) SELECT 1, ln, $now, $payload, NULL, ln, 'new', \
$status, 0, building_id, date, provider, $cast_c, $cast_t, ln * 7, ln * 13 FROM $raw_from WHERE ln BETWEEN $lo AND $hi;"
    fi
    echo "COMMIT;"
  done
}

seconds() { date +%s.%N; }

if [[ "$ONLY" != postgres ]]; then
  STAGE="$OUT/floor_stage.db"
  DB="$OUT/floor.db"
  rm -f "$STAGE"
  sqlite3 "$STAGE" >/dev/null <<SQL
CREATE TABLE csv (building_id TEXT, date TEXT, consumption TEXT, temperature TEXT, provider TEXT);
.mode csv
.import --skip 1 $DATA csv
CREATE TABLE st AS SELECT rowid AS ln, * FROM csv;
CREATE INDEX st_ln ON st (ln);
CREATE TABLE su AS SELECT * FROM st WHERE ln IN (SELECT MIN(ln) FROM st GROUP BY building_id, date, provider);
CREATE INDEX su_ln ON su (ln);
CREATE TABLE sk AS SELECT row_number() OVER (ORDER BY building_id, date, provider, ln) AS ln,
  building_id, date, consumption, temperature, provider FROM st;
CREATE INDEX sk_ln ON sk (ln);
SQL
  # sqlite_variant LABEL WHAT SETUP-SQL [AFTER-SQL]: a fresh emdp schema, SETUP-SQL applied,
  # then timed: the chunks, then AFTER-SQL.
  sqlite_variant() {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    "$EMDP" migrate --database-url "sqlite://$DB" >/dev/null
    sqlite3 "$DB" "$3" >/dev/null
    local start ticks
    start=$(seconds)
    ticks=$(busy_ticks)
    {
      echo "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
      echo "ATTACH '$STAGE' AS stage;"
      statements "$2" sqlite | sed 's/ FROM \(st\|su\|sk\) / FROM stage.\1 /'
      echo "${4:-}"
    } | sqlite3 "$DB" >/dev/null
    report sqlite "$1" "$start" "$ticks"
  }
  sqlite_variant "records + raw, full schema" both ""
  sqlite_variant "records + raw, full schema, in key order" keyed ""
  # The two building-ordered indexes as the migrations define them.
  rm -f "$DB" "$DB-wal" "$DB-shm"
  "$EMDP" migrate --database-url "sqlite://$DB" >/dev/null
  BUILDING_INDEXES="$(sqlite3 "$DB" "SELECT sql || ';' FROM sqlite_schema WHERE name IN ('records_reading', 'records_valid_days')")"
  sqlite_variant "records + raw, building-ordered indexes built after" bulk \
    "DROP INDEX records_valid_days; DROP INDEX records_reading;" "$BUILDING_INDEXES"
  sqlite_variant "records, full schema" records ""
  sqlite_variant "records without records_valid_days" records "DROP INDEX records_valid_days;"
  sqlite_variant "records without either building-ordered index" records \
    "DROP INDEX records_valid_days; DROP INDEX records_reading;"
  sqlite_variant "raw rows only" raw ""
  rm -f "$STAGE" "$DB" "$DB-wal" "$DB-shm"
fi

if [[ "$ONLY" != sqlite ]]; then
  NAME="emdp_bench_floor_$$"
  PG_URL="${PG_ADMIN_URL%/*}/$NAME"
  # pg_variant LABEL WHAT SETUP-SQL: a fresh database and emdp schema, SETUP-SQL applied, timed.
  pg_variant() {
    psql -q "$PG_ADMIN_URL" -c "SET client_min_messages TO warning" -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" \
      -c "CREATE DATABASE $NAME" >/dev/null
    "$EMDP" migrate --database-url "$PG_URL" >/dev/null
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null <<SQL
CREATE FUNCTION try_date(text) RETURNS date LANGUAGE plpgsql IMMUTABLE AS
  \$\$ BEGIN RETURN \$1::date; EXCEPTION WHEN others THEN RETURN NULL; END \$\$;
CREATE FUNCTION try_float(text) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS
  \$\$ BEGIN RETURN \$1::float8; EXCEPTION WHEN others THEN RETURN NULL; END \$\$;
CREATE TABLE csv (building_id TEXT, date TEXT, consumption TEXT, temperature TEXT, provider TEXT);
\\copy csv FROM '$DATA' (FORMAT csv, HEADER true)
CREATE TABLE st AS SELECT row_number() OVER () AS ln, building_id,
  try_date(date) AS date, try_float(consumption) AS consumption, try_float(temperature) AS temperature,
  provider FROM csv;
CREATE INDEX ON st (ln);
VACUUM ANALYZE st;
$3
CHECKPOINT;
SQL
    local start ticks
    start=$(seconds)
    ticks=$(busy_ticks)
    statements "$2" postgres | psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null
    report postgresql "$1" "$start" "$ticks"
  }
  COPY_DIR="$OUT/floor_copy"
  trap 'psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" >/dev/null || true; rm -rf "$COPY_DIR"' EXIT
  pg_variant "records + raw, full schema" both ""
  # Its rows, per chunk, in COPY's binary format, for the variants below.
  rm -rf "$COPY_DIR" && mkdir -p "$COPY_DIR"
  for ((i = 0; i < CHUNKS; i++)); do
    lo=$((i * CHUNK + 1)) hi=$(((i + 1) * CHUNK))
    echo "\\copy (SELECT id, $RECORD_COLUMNS FROM records WHERE winner_line BETWEEN $lo AND $hi ORDER BY id) \
TO '$COPY_DIR/records_$i.bin' (FORMAT binary)"
    echo "\\copy (SELECT $RAW_COLUMNS FROM raw_records WHERE line BETWEEN $lo AND $hi ORDER BY line) \
TO '$COPY_DIR/raw_$i.bin' (FORMAT binary)"
  done | psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null
  # The building-ordered key index, as the migrations define it (the raw store's only index
  # is its primary key, appended to).
  SECONDARY="'records_reading'"
  SECONDARY_INDEXES="$(psql -tA "$PG_URL" -c "SELECT string_agg(pg_get_indexdef(indexrelid), '; ') FROM pg_index \
WHERE indexrelid::regclass::text IN ($SECONDARY)")"
  # pg_copy_variant LABEL SESSIONS SETUP-SQL [AFTER-SQL]: a fresh emdp schema, SETUP-SQL
  # applied, then timed: the chunks' COPY, each chunk one transaction, SESSIONS sessions at
  # once taking every SESSIONS-th chunk, then AFTER-SQL.
  pg_copy_variant() {
    psql -q "$PG_ADMIN_URL" -c "SET client_min_messages TO warning" -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" \
      -c "CREATE DATABASE $NAME" >/dev/null
    "$EMDP" migrate --database-url "$PG_URL" >/dev/null
    [[ -z "$3" ]] || psql -q -v ON_ERROR_STOP=1 "$PG_URL" -c "$3" >/dev/null
    psql -q "$PG_URL" -c "CHECKPOINT" >/dev/null
    local start ticks session pids=()
    start=$(seconds)
    ticks=$(busy_ticks)
    for ((session = 0; session < $2; session++)); do
      for ((i = session; i < CHUNKS; i += $2)); do
        echo "BEGIN;"
        echo "\\copy records (id, $RECORD_COLUMNS) FROM '$COPY_DIR/records_$i.bin' (FORMAT binary)"
        echo "\\copy raw_records ($RAW_COLUMNS) FROM '$COPY_DIR/raw_$i.bin' (FORMAT binary)"
        echo "COMMIT;"
      done | psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    [[ -z "${4:-}" ]] || psql -q -v ON_ERROR_STOP=1 "$PG_URL" -c "$4" >/dev/null
    report postgresql "$1" "$start" "$ticks"
  }
  pg_copy_variant "records + raw, binary COPY, 1 session" 1 ""
  pg_copy_variant "records + raw, binary COPY, 2 sessions" 2 ""
  pg_copy_variant "records + raw, binary COPY, 2 sessions, key index after" 2 \
    "DROP INDEX $(echo "$SECONDARY" | tr -d "'")" "$SECONDARY_INDEXES"
  pg_variant "records, full schema" records ""
  pg_variant "records without the key index" records_plain "DROP INDEX records_reading;"
  pg_variant "raw rows only" raw ""
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

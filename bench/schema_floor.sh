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
printf '%-12s %-44s %9s %12s %9s\n' database variant wall rows/s "µs/row"

report() {
  awk -v d="$1" -v v="$2" -v w="$3" -v n="$ROWS" \
    'BEGIN { printf "%-12s %-44s %8.2fs %12.0f %9.1f\n", d, v, w, n / w, w * 1e6 / n }'
}

# The statements of one variant, one transaction per chunk: $1 = records | raw | both |
# records_plain (no ON CONFLICT: for a schema without the key index), $2 = sqlite | postgres.
# `st` holds the CSV with its line number as `ln` (the ingest order).
RECORD_COLUMNS="building_id, date, provider, content_key, consumption, temperature, status, reasons, \
fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at"
RAW_COLUMNS="batch_id, line, received_at, payload, parse_error, record_id, admission, status, reasons, \
building_id, date, provider, consumption, temperature, fp_consumption, fp_temperature"
statements() {
  local what="$1" flavour="$2" begin conflict cast_c cast_t now status payload
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
  [[ "$what" == records_plain ]] && conflict=""
  # About 90 % VALID, as in the generated data set.
  status="CASE WHEN ln % 10 = 0 THEN 'INCOMPLETE' ELSE 'VALID' END"
  for ((i = 0; i < CHUNKS; i++)); do
    local lo=$((i * CHUNK + 1)) hi=$(((i + 1) * CHUNK))
    echo "$begin;"
    if [[ "$what" != raw ]]; then
      echo "INSERT INTO records ($RECORD_COLUMNS) SELECT building_id, date, provider, NULL, $cast_c, $cast_t, \
$status, 0, ln * 7, ln * 13, 1, ln, 1, false, $now, $now FROM st WHERE ln BETWEEN $lo AND $hi \
ORDER BY building_id, date, provider $conflict;"
    fi
    if [[ "$what" == raw || "$what" == both ]]; then
      echo "INSERT INTO raw_records ($RAW_COLUMNS) SELECT 1, ln, $now, $payload, NULL, ln, 'new', \
$status, 0, building_id, date, provider, $cast_c, $cast_t, ln * 7, ln * 13 FROM st WHERE ln BETWEEN $lo AND $hi;"
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
SQL
  # sqlite_variant LABEL WHAT SETUP-SQL: a fresh emdp schema, SETUP-SQL applied, then timed.
  sqlite_variant() {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    "$EMDP" migrate --database-url "sqlite://$DB" >/dev/null
    sqlite3 "$DB" "$3" >/dev/null
    local start end
    start=$(seconds)
    {
      echo "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
      echo "ATTACH '$STAGE' AS stage;"
      statements "$2" sqlite | sed 's/ FROM st / FROM stage.st /'
    } | sqlite3 "$DB" >/dev/null
    end=$(seconds)
    report sqlite "$1" "$(echo "$end - $start" | bc)"
  }
  sqlite_variant "records + raw, full schema" both ""
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
    local start end
    start=$(seconds)
    statements "$2" postgres | psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null
    end=$(seconds)
    report postgresql "$1" "$(echo "$end - $start" | bc)"
  }
  trap 'psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)" >/dev/null || true' EXIT
  pg_variant "records + raw, full schema" both ""
  pg_variant "records, full schema" records ""
  pg_variant "records without records_valid_series" records "DROP INDEX records_valid_series;"
  pg_variant "records without either index" records_plain "DROP INDEX records_valid_series, records_reading;"
  pg_variant "raw rows only" raw ""
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

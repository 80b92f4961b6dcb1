#!/usr/bin/env bash
# Benchmark: `emdp ingest` of the 1,000,000-row dirty data set into a fresh SQLite file and a
# fresh PostgreSQL database (first run, then a re-run where every row is an exact duplicate),
# against PostgreSQL's own `\copy` of the same CSV into a plain 5-TEXT-column table, in the
# same run. Reports wall time, rows/s and peak RSS (`/usr/bin/time`), the CPU time the whole
# machine spent meanwhile (emdp, PostgreSQL's processes, the kernel: what the run costs the
# machine, whatever runs it), and the ratios.
#
# Run from the repo root:   bash bench/ingest.sh
#
# Environment knobs:
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
#                                      server used; the script creates and drops its own
#                                      database there (requires psql and CREATE DATABASE)
#   BUILDINGS, DAYS, SEED, DATA, SKIP_BUILD, EMDP   see bench/common.sh
#
# Everything it creates lives in bench/out/ (gitignored) except the PostgreSQL database.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v psql >/dev/null || die "psql is required"
command -v jq >/dev/null || die "jq is required"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is required"
prepare
TODAY="$(jq -r .today.first "$MANIFEST")"
ROWS="$(jq -r .expected.total "$MANIFEST")"

# A database of our own, dropped on exit whatever happens.
DB="emdp_bench_ingest_$$"
PG_URL="${PG_ADMIN_URL%/*}/$DB"
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
cleanup() { psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true; }
trap cleanup EXIT

SQLITE_FILE="$OUT/ingest_bench.db"
rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"

echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "data: $DATA ($ROWS rows, $(du -m "$DATA" | cut -f1) MB), --today $TODAY"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-24s %10s %12s %12s %10s  %s\n' run wall rows/s "peak RSS" "CPU-s" load
TIMES="$OUT/ingest_time.txt"
declare -A WALL

# settle: the writes of the runs before on disk (the kernel's dirty pages, PostgreSQL's
# checkpoint), so that no run pays for the write-back of the one before it.
settle() {
  sync
  psql -q "$PG_URL" -c "CHECKPOINT" >/dev/null
}

# measure LABEL CMD...: runs CMD under /usr/bin/time, stdout to $OUT/<label>.out.
measure() {
  local label="$1" before after
  shift
  settle
  before=$(busy_ticks)
  /usr/bin/time -f '%e %M' -o "$TIMES" "$@" >"$OUT/ingest_${label// /_}.out"
  after=$(busy_ticks)
  read -r wall rss <"$TIMES"
  WALL[$label]="$wall"
  awk -v l="$label" -v w="$wall" -v r="$rss" -v n="$ROWS" -v c="$(cpu_seconds "$before" "$after")" \
    -v la="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "%-24s %9.2fs %12.0f %9.1f MiB %10s  %s\n", l, w, n / w, r / 1024, c, la }'
}

# check LABEL REPEATS: the summary matches the manifest's classification, REPEATS = the rows
# expected to repeat a stored version: the manifest's exact duplicates on a first run, every row
# on a re-run (re-deliveries since issue 27, exact duplicates in builds before it).
check() {
  local file="$OUT/ingest_${1// /_}.out"
  for status in total valid incomplete inconsistent; do
    [[ "$(jq ".$status" "$file")" == "$(jq ".expected.$status" "$MANIFEST")" ]] || die "$1: $status differs"
  done
  local repeats
  repeats="$(jq '.duplicates.exact + (.stored.redelivered // 0)' "$file")"
  [[ "$repeats" == "$2" ]] || die "$1: exact duplicates and re-deliveries $repeats != $2"
}

expected_exact="$(jq .expected.duplicates.exact "$MANIFEST")"
INGEST=("$EMDP" ingest "$DATA" --today "$TODAY" --output json --database-url)

measure "sqlite first" "${INGEST[@]}" "sqlite://$SQLITE_FILE"
check "sqlite first" "$expected_exact"
measure "sqlite re-run" "${INGEST[@]}" "sqlite://$SQLITE_FILE"
check "sqlite re-run" "$ROWS"
measure "postgres first" "${INGEST[@]}" "$PG_URL"
check "postgres first" "$expected_exact"
measure "postgres re-run" "${INGEST[@]}" "$PG_URL"
check "postgres re-run" "$ROWS"

psql -q "$PG_URL" -c "CREATE TABLE plain_copy (building_id TEXT, date TEXT, consumption TEXT, temperature TEXT, provider TEXT)"
measure "postgres plain copy" psql -q "$PG_URL" -c "\\copy plain_copy FROM '$DATA' WITH (FORMAT csv, HEADER true)"
copied="$(psql -tA "$PG_URL" -c "SELECT count(*) FROM plain_copy")"
[[ "$copied" == "$ROWS" ]] || die "\\copy loaded $copied rows, not $ROWS"

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for label in "sqlite first" "sqlite re-run" "postgres first" "postgres re-run"; do
  awk -v l="$label" -v w="${WALL[$label]}" -v c="${WALL[postgres plain copy]}" \
    'BEGIN { printf "%-24s %5.1fx the time of the plain \\copy\n", l, w / c }'
done
echo "database sizes: SQLite $(du -cm "$SQLITE_FILE"* | tail -1 | cut -f1) MB," \
  "PostgreSQL $(psql -tA "$PG_URL" -c "SELECT pg_database_size(current_database()) / 1048576") MB"

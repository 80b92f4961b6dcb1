#!/usr/bin/env bash
# Benchmark: the whole quality report (`emdp report`, every building) and the dashboard's
# overview (`GET /api/v1/quality/overview`) on the 1,000,000-row dirty data set, in a fresh
# SQLite file and a fresh PostgreSQL database, right after `emdp ingest`.
#
# Before timing it checks the figures: the report's row counts (status, reasons, duplicates)
# equal the generator's manifest, its gap days over the manifest's clean date range equal the
# manifest's gaps, and SQLite's and PostgreSQL's reports are identical.
#
# Run from the repo root:   bash bench/report.sh
#
# Environment knobs:
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
#                                      server used; the script creates and drops its own database
#   RUNS=3                             timed runs per measurement
#   BUILDINGS, DAYS, SEED, DATA, SKIP_BUILD, EMDP   see bench/common.sh
#   PAGE=1                             also time the overview page in headless Chromium
#                                      (needs /usr/bin/chromium and `npm ci` in tests/e2e)
#
# Everything it creates lives in bench/out/ (gitignored) except the PostgreSQL database.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
RUNS="${RUNS:-3}"
for tool in psql jq curl; do command -v "$tool" >/dev/null || die "$tool is required"; done
prepare
# The day after the data's last day, so that no record is in the future.
TODAY="$(date -d "$(jq -r .today.first "$MANIFEST") + 1 day" +%F)"
CLEAN_FROM="$(jq -r .clean_dates.first "$MANIFEST")"
CLEAN_TO="$(jq -r .clean_dates.last "$MANIFEST")"

DB="emdp_bench_report_$$"
PG_URL="${PG_ADMIN_URL%/*}/$DB"
SQLITE_FILE="$OUT/report_bench.db"
SERVER_PID=""
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"

echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "data: $DATA ($(jq .expected.total "$MANIFEST") rows), --today $TODAY"

declare -A URLS=([sqlite]="sqlite://$SQLITE_FILE" [postgres]="$PG_URL")
for db in sqlite postgres; do
  echo "ingesting into $db ..."
  "$EMDP" ingest "$DATA" --today "$TODAY" --output json --database-url "${URLS[$db]}" >/dev/null
  "$EMDP" report --database-url "${URLS[$db]}" --today "$TODAY" --output json >"$OUT/report_$db.json"
  "$EMDP" report --database-url "${URLS[$db]}" --today "$TODAY" --from "$CLEAN_FROM" --to "$CLEAN_TO" \
    --output json >"$OUT/report_${db}_clean.json"
  diff <(jq -S .expected "$MANIFEST") <(jq -S '.rows | {total, valid, incomplete, inconsistent, duplicates, reasons}' \
    "$OUT/report_$db.json") >/dev/null || die "$db: the report's row counts differ from the manifest"
  gap_days="$(jq .completeness.totals.gap_days "$OUT/report_${db}_clean.json")"
  [[ "$gap_days" == "$(jq .gaps "$MANIFEST")" ]] || die "$db: $gap_days gap days, the manifest says $(jq .gaps "$MANIFEST")"
  echo "  $db: rows = manifest, clean-range gap days = manifest's gaps ($gap_days)"
done
cmp -s <(jq -S . "$OUT/report_sqlite.json") <(jq -S . "$OUT/report_postgres.json") ||
  die "SQLite's and PostgreSQL's reports differ"
echo "  SQLite's and PostgreSQL's reports are identical"

echo "load average before timing: $(cut -d' ' -f1-3 /proc/loadavg)"
for db in sqlite postgres; do
  for run in $(seq "$RUNS"); do
    /usr/bin/time -f "%e" -o "$OUT/report_time.txt" \
      "$EMDP" report --database-url "${URLS[$db]}" --today "$TODAY" --output json >/dev/null
    printf 'emdp report, %-8s run %d: %6.2f s   (load %s)\n' "$db" "$run" "$(cat "$OUT/report_time.txt")" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
EMDP_LOG_LEVEL=warn "$EMDP" serve --no-auth --bind "127.0.0.1:$PORT" --database-url "sqlite://$SQLITE_FILE" \
  >"$OUT/report_serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && break; sleep 0.1; done
for query in "" "provider=provider_a" "from=2024-01-01&to=2024-12-31" "building_id=B00042"; do
  for run in $(seq "$RUNS"); do
    seconds="$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/v1/quality/overview?today=$TODAY&$query")"
    printf 'overview API, sqlite, %-32s run %d: %6.3f s\n' "${query:-(no filter)}" "$run" "$seconds"
  done
done
if [[ "${PAGE:-0}" == 1 ]]; then
  node tests/e2e/bench-overview.mjs "http://127.0.0.1:$PORT" "/?today=$TODAY" "$RUNS"
  node tests/e2e/bench-overview.mjs "http://127.0.0.1:$PORT" "/?today=$TODAY&provider=provider_a&from=2024-01-01&to=2024-12-31" "$RUNS"
fi

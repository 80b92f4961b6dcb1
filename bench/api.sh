#!/usr/bin/env bash
# HTTP API benchmarks with wrk on loopback:
#  1. POST /api/v1/records:validate with one record, 64 connections (SQLite by default);
#  2. bulk ingest: POST /api/v1/records with 1,000-record NDJSON bodies into PostgreSQL;
#  3. one new record per POST /api/v1/records, 16 connections, SQLite then PostgreSQL.
# Rate limiting is off (it would answer 429 to one client at this rate); logs at EMDP_LOG_LEVEL
# (default info: one line per request).
# Needs wrk (apt-get install wrk) and, for 2, psql and a local PostgreSQL (PGURL).
# SKIP_BUILD=1 EMDP=path runs another emdp binary (e.g. an older build, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
EMDP=${EMDP:-target/release/emdp}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p emdp-cli
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
out=bench/out/api; mkdir -p "$out"; rm -f "$out"/emdp.db*
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve() { EMDP_NO_AUTH=1 EMDP_RATE_LIMIT=false EMDP_LOG_LEVEL=${EMDP_LOG_LEVEL:-info} "$EMDP" serve --bind "127.0.0.1:$port" --database-url "$1" >"$out/server.log" 2>&1 & echo $!; }
wait_up() { for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && return; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

echo "== validate, one record, SQLite, 64 connections"
pid=$(serve "sqlite://$out/emdp.db"); wait_up
curl -fs -XPOST "http://127.0.0.1:$port/api/v1/records" -H 'content-type: application/json' \
  -d '{"building_id":"B00042","date":"2025-03-14","consumption":412.75,"temperature":8.5,"provider":"provider_a"}' >/dev/null
wrk -t2 -c64 -d"$DURATION" --latency -s bench/api_validate.lua "http://127.0.0.1:$port/api/v1/records:validate"
kill "$pid"; wait "$pid" 2>/dev/null || true

db=emdp_bench_api_$$
psql "$PGURL/postgres" -qc "CREATE DATABASE $db"
trap 'psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
echo "== bulk ingest, 1,000-record NDJSON bodies, PostgreSQL"
pid=$(serve "$PGURL/$db"); wait_up
wrk -t2 -c8 -d"$DURATION" --latency -s bench/api_ingest.lua "http://127.0.0.1:$port/api/v1/records"
echo "records stored: $(psql "$PGURL/$db" -tAc 'SELECT count(*) FROM records')"
kill "$pid"; wait "$pid" 2>/dev/null || true

for url in "sqlite://$out/emdp.db" "$PGURL/$db"; do
  echo "== one new record per request, ${url%%:*}, 16 connections"
  pid=$(serve "$url"); wait_up
  wrk -t2 -c16 -d"$DURATION" --latency -s bench/api_create.lua "http://127.0.0.1:$port/api/v1/records"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

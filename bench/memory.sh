#!/usr/bin/env bash
# Benchmark: peak memory on hostile inputs (issue 27). Every figure must stay flat however large
# the input: the files under 150 MB, the server under 300 MB for any body under its limit.
#
# Files (`emdp validate` and `emdp ingest`, peak RSS from `/usr/bin/time -v`): one 100 MB CSV
# line without a line break, and a 1 MB gzip that expands to 1 GB of zeros (a gzip bomb), both
# followed by one valid row; `validate` also reads 1 GB of blank lines and 1 GB of short junk
# rows (`a,b,c`), both gzipped. Every record is held to the 1 MiB record limit, so peak RSS
# stays near that of a small, normal file (printed first). Prints the exit code, peak RSS, wall
# time, and the warning emdp printed (the cut record's line, length and the limit).
#
# The HTTP API (`emdp serve` on a fresh SQLite database per case, peak RSS from VmHWM of
# /proc/PID/status, the figure `/usr/bin/time -v` reports): 1M empty objects `[{},{},...]`
# (3 MB) to POST /api/v1/records:validate and /api/v1/records (before the cap on records per
# request: 535 MB answered, 6.1 GB and 1.9 GB peak), then the most the cap accepts: 10,000
# records of about 1 KB each (10 MB, just under the body limit), to both routes.
#
# Run from the repo root:   bash bench/memory.sh
#
# Environment knobs:
#   SKIP_BUILD=1 EMDP=path   skip `cargo build --release`, use another emdp binary
#   LINE_MB=100 BOMB_MB=1024 sizes of the long line and of the decompressed bomb
#
# The inputs (about 20 MB on disk, the long line aside) live in a temporary directory, removed
# on exit.
set -euo pipefail
source "$(dirname "$0")/common.sh"

LINE_MB="${LINE_MB:-100}"
BOMB_MB="${BOMB_MB:-1024}"
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is required"
if [[ "$SKIP_BUILD" != 1 ]]; then
  cargo build --release -p emdp-cli >&2
fi
[[ -x "$EMDP" ]] || die "$EMDP is not built"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
HEADER='building_id,date,consumption,temperature,provider'
ROW='B1,2025-01-01,10,5,p'
TODAY=2025-06-30

echo "machine: $(nproc) CPUs, $(uname -sr); emdp: $EMDP" >&2
echo "building the inputs in $TMP" >&2
"$EMDP" generate --buildings 10 --days 1000 --seed 1 --out "$TMP/normal.csv" >/dev/null 2>&1
{ echo "$HEADER"; head -c "$((LINE_MB << 20))" /dev/zero | tr '\0' x; printf '\n%s\n' "$ROW"; } >"$TMP/line.csv"
{ echo "$HEADER"; head -c "$((BOMB_MB << 20))" /dev/zero; printf '\n%s\n' "$ROW"; } | gzip -9 >"$TMP/bomb.csv.gz"
{ echo "$HEADER"; head -c "$((BOMB_MB << 20))" /dev/zero | tr '\0' '\n'; } | gzip -9 >"$TMP/newlines.csv.gz"
# `yes` ends on SIGPIPE when `head` has enough: not a failure.
{ echo "$HEADER"; { yes 'a,b,c' || true; } | head -c "$((BOMB_MB << 20))"; } | gzip -9 >"$TMP/junk.csv.gz"

size() { du -h "$1" | cut -f1; }
printf '%-34s %8s %5s %12s %8s\n' run input exit "peak RSS" wall
# measure LABEL FILE CMD...: runs CMD under /usr/bin/time -v; prints its exit code, peak RSS
# and wall time, and keeps its standard error in $TMP/LABEL.err.
measure() {
  local label="$1" file="$2" rc=0 rss wall
  shift 2
  /usr/bin/time -v -o "$TMP/time.txt" "$@" >/dev/null 2>"$TMP/$label.err" || rc=$?
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f MB", $2 / 1024 }' "$TMP/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$TMP/time.txt")
  printf '%-34s %8s %5s %12s %8s\n' "$label" "$(size "$file")" "$rc" "$rss" "$wall"
}

for input in normal line bomb; do
  file="$TMP/$input.csv"
  [[ -f "$file" ]] || file="$file.gz"
  measure "validate $input" "$file" "$EMDP" validate "$file" --today "$TODAY"
  measure "ingest $input (SQLite)" "$file" \
    "$EMDP" ingest "$file" --today "$TODAY" --database-url "sqlite://$TMP/$input.db"
done
for input in newlines junk; do
  measure "validate $input" "$TMP/$input.csv.gz" "$EMDP" validate "$TMP/$input.csv.gz" --today "$TODAY"
done

echo
echo "what emdp said on standard error:"
for label in "validate line" "ingest bomb (SQLite)" "validate newlines"; do
  echo "  $label: $(head -c 300 "$TMP/$label.err")"
done

echo
echo "the HTTP API, one request per fresh server:"
python3 - "$TMP" <<'EOF'
import json, sys
out = sys.argv[1]
with open(f"{out}/empty_1m.json", "w") as f:
    f.write("[" + ",".join(["{}"] * 1_000_000) + "]")
pad = "x" * 900
rows = [
    {"building_id": f"M{i % 100:05d}", "date": f"2024-{1 + (i // 100) % 12:02d}-{1 + i % 28:02d}",
     "consumption": 100 + i % 50, "temperature": 5, "provider": f"p{i // 1200}-{pad}"}
    for i in range(10_000)
]
with open(f"{out}/cap_10k.json", "w") as f:
    json.dump(rows, f)
EOF

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%-34s %-26s %6s %14s %14s\n' body route status answer_bytes peak_rss_mb
for body in empty_1m cap_10k; do
  for route in /api/v1/records:validate /api/v1/records; do
    rm -f "$TMP"/emdp.db*
    EMDP_NO_AUTH=1 EMDP_RATE_LIMIT=false EMDP_LOG_LEVEL=warn \
      "$EMDP" serve --bind "127.0.0.1:$port" --database-url "sqlite://$TMP/emdp.db" >"$TMP/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
    result=$(curl -s -o "$TMP/answer.json" -w '%{http_code} %{size_download}' -XPOST \
      -H 'content-type: application/json' --data-binary "@$TMP/$body.json" "http://127.0.0.1:$port$route")
    peak_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    read -r status bytes <<<"$result"
    printf '%-34s %-26s %6s %14s %14s\n' "$body ($(stat -c %s "$TMP/$body.json") B)" "$route" "$status" "$bytes" \
      "$(awk -v kb="$peak_kb" 'BEGIN { printf "%.0f", kb / 1024 }')"
  done
done

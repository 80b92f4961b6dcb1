#!/usr/bin/env bash
# Peak memory of `emdp serve` for the largest bodies the HTTP API accepts (issue 27): each case
# starts a fresh server on a temporary SQLite database, sends one request, and prints the
# answer's status and size and the server's peak RSS (VmHWM of /proc/PID/status, the same
# figure `/usr/bin/time -v` reports as "Maximum resident set size").
#  1. 1M empty objects `[{},{},...]` (3 MB) to POST /api/v1/records:validate and /api/v1/records
#     (before the cap on records per request: 535 MB answered, 6.1 GB and 1.9 GB peak);
#  2. the most the cap accepts: 10,000 records of about 1 KB each (10 MB, just under the body
#     limit), to both routes.
# The goal: every request under the body limit peaks below 300 MB.
# SKIP_BUILD=1 EMDP=path runs another emdp binary (e.g. an older build, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
EMDP=${EMDP:-target/release/emdp}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p emdp-cli
[ -x "$EMDP" ] || { echo "bench/memory_api.sh: $EMDP is not built" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
out=bench/out/memory_api; mkdir -p "$out"

python3 - "$out" <<'EOF'
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
    rm -f "$out"/emdp.db*
    EMDP_NO_AUTH=1 EMDP_RATE_LIMIT=false EMDP_LOG_LEVEL=warn \
      "$EMDP" serve --bind "127.0.0.1:$port" --database-url "sqlite://$out/emdp.db" >"$out/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
    result=$(curl -s -o "$out/answer.json" -w '%{http_code} %{size_download}' -XPOST \
      -H 'content-type: application/json' --data-binary "@$out/$body.json" "http://127.0.0.1:$port$route")
    peak_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    read -r status bytes <<<"$result"
    printf '%-34s %-26s %6s %14s %14s\n' "$body ($(stat -c %s "$out/$body.json") B)" "$route" "$status" "$bytes" \
      "$(awk -v kb="$peak_kb" 'BEGIN { printf "%.0f", kb / 1024 }')"
  done
done

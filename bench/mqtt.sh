#!/usr/bin/env bash
# Real-time benchmarks (issue 8) on loopback, with a dedicated Mosquitto on a free port and a
# fresh PostgreSQL database (created and dropped with psql):
#  a. sustained MQTT ingestion: RECORDS records (default 300,000, from `emdp generate`, no faults)
#     published as messages of PER_MESSAGE records (default 100) with `mosquitto_pub -l -q 1`, one
#     message per line; `mosquitto_pub -l` splits on newlines, so each message is a one-line JSON
#     array rather than NDJSON (the ingester accepts a record, an array or NDJSON alike). Records/s
#     from the start of the publish until `raw_records` holds them all (polled every 0.1 s).
#  b. alert latency: a threshold rule (cooldown 0) created over the API, an SSE client on
#     /api/v1/alerts/stream, then ALERTS (default 200) triggering records for distinct buildings
#     published one at a time through one connected `mosquitto_pub -l -q 1` (after 5 warm-up
#     records); latency = time the SSE `fired` event is read - time the line is written to the
#     publisher, both taken by the same Python process; p50/p90/p99/max.
# Needs mosquitto, mosquitto_pub, psql and a local PostgreSQL (PGURL), python3, curl.
# SKIP_BUILD=1 EMDP=path runs another emdp binary (e.g. an older build, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-300000}
PER_MESSAGE=${PER_MESSAGE:-100}
ALERTS=${ALERTS:-200}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
EMDP=${EMDP:-target/release/emdp}
for tool in mosquitto mosquitto_pub psql python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install mosquitto mosquitto-clients postgresql-client)" >&2; exit 1; }
done
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p emdp-cli
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(mosquitto -h 2>/dev/null | head -n1); $(psql --version)"
out=bench/out/mqtt
mkdir -p "$out"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mqtt_port=$(free_port)
http_port=$(free_port)
db=emdp_bench_mqtt_$$
broker_pid= server_pid=
cleanup() {
  [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
  [ -z "$broker_pid" ] || { kill "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null || true; }
  psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cat >"$out/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
persistence false
EOF
mosquitto -c "$out/mosquitto.conf" >"$out/mosquitto.log" 2>&1 &
broker_pid=$!

echo "== data: $RECORDS records in messages of $PER_MESSAGE"
"$EMDP" generate --buildings $((RECORDS / 365 + 1)) --days 365 --faults 0 \
  --out "$out/data.csv" --manifest "$out/data.manifest.json"
python3 - "$out/data.csv" "$RECORDS" "$PER_MESSAGE" >"$out/messages.txt" <<'PY'
import csv, json, sys
path, total, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def num(text):
    try:
        return float(text)
    except ValueError:
        return text or None
batch = []
with open(path, newline="") as f:
    for i, row in enumerate(csv.DictReader(f)):
        if i == total:
            break
        row["consumption"], row["temperature"] = num(row["consumption"]), num(row["temperature"])
        batch.append(row)
        if len(batch) == per:
            print(json.dumps(batch, separators=(",", ":")))
            batch = []
if batch:
    print(json.dumps(batch, separators=(",", ":")))
PY
echo "messages: $(wc -l <"$out/messages.txt"), $(du -h "$out/messages.txt" | cut -f1)"

psql "$PGURL/postgres" -qc "CREATE DATABASE $db"
EMDP_NO_AUTH=1 EMDP_RATE_LIMIT=false EMDP_LOG_LEVEL=${EMDP_LOG_LEVEL:-info} "$EMDP" serve \
  --bind "127.0.0.1:$http_port" --database-url "$PGURL/$db" \
  --mqtt-url "mqtt://127.0.0.1:$mqtt_port" --mqtt-topic 'energy/+/records' >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$http_port/api/v1/health" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$http_port/api/v1/health" >/dev/null || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
sleep 1 # the subscription

count() { psql "$PGURL/$db" -tAc 'SELECT count(*) FROM raw_records'; }
echo "== a. sustained MQTT ingestion into PostgreSQL"
cpu_before=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
start=$(date +%s.%N)
mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -t energy/bench/records -q 1 -l <"$out/messages.txt"
published=$(date +%s.%N)
stored=0
for _ in $(seq 1 6000); do
  stored=$(count)
  [ "$stored" -ge "$RECORDS" ] && break
  sleep 0.1
done
end=$(date +%s.%N)
cpu_after=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
python3 - "$start" "$published" "$end" "$stored" "$RECORDS" "$(( cpu_after - cpu_before ))" "$(getconf CLK_TCK)" <<'PY'
import sys
start, published, end = map(float, sys.argv[1:4])
stored, wanted, ticks, hz = map(int, sys.argv[4:8])
print(f"published in {published - start:.2f} s; {stored} of {wanted} raw records stored after {end - start:.2f} s")
print(f"ingestion rate: {stored / (end - start):,.0f} records/s (server CPU {ticks / hz:.1f} s)")
PY
echo "curated records: $(psql "$PGURL/$db" -tAc 'SELECT count(*) FROM records'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$stored" -ge "$RECORDS" ] || { echo "not every record was stored" >&2; exit 1; }

echo "== b. MQTT publish -> SSE alert latency, $ALERTS triggering records"
curl -fsS -XPOST "http://127.0.0.1:$http_port/api/v1/alert-rules" -H 'content-type: application/json' \
  -d '{"name":"bench: consumption above 100000","kind":"threshold","params":{"above":100000},"severity":"critical","cooldown_seconds":0}' \
  >/dev/null
python3 - "$http_port" "$mqtt_port" "$ALERTS" <<'PY'
import json, subprocess, sys, threading, time, urllib.request
http_port, mqtt_port, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
received, cond, ready = {}, threading.Condition(), threading.Event()

def read_stream():
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/alerts/stream",
                                     headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request) as response:
        ready.set()
        kind = None
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "fired":
                now = time.time()
                building = json.loads(line[5:])["alert"]["building"]
                with cond:
                    received[building] = now
                    cond.notify_all()

threading.Thread(target=read_stream, daemon=True).start()
if not ready.wait(10):
    sys.exit("the SSE stream did not open")
publisher = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", mqtt_port, "-t", "energy/latency/records",
                              "-q", "1", "-l"], stdin=subprocess.PIPE, text=True)
time.sleep(0.5)

def publish(building):
    record = {"building_id": building, "date": "2025-06-01", "consumption": 150000.5, "temperature": 12.0,
              "provider": "bench"}
    sent = time.time()
    publisher.stdin.write(json.dumps(record) + "\n")
    publisher.stdin.flush()
    with cond:
        cond.wait_for(lambda: building in received, timeout=5)
    return received[building] - sent if building in received else None

for i in range(5):
    publish(f"WARM{i:04d}")
latencies, missing = [], 0
for i in range(n):
    latency = publish(f"LAT{i:05d}")
    if latency is None:
        missing += 1
    else:
        latencies.append(latency * 1000)
    time.sleep(0.01)
publisher.stdin.close()
publisher.wait()
latencies.sort()
def rank(q):
    return latencies[max(0, -(-len(latencies) * q // 100) - 1)]
print(f"alerts received: {len(latencies)} of {n} ({missing} missing after 5 s)")
if latencies:
    print(f"latency ms: min {latencies[0]:.1f}, p50 {rank(50):.1f}, p90 {rank(90):.1f}, p99 {rank(99):.1f}, "
          f"max {latencies[-1]:.1f}, mean {sum(latencies) / len(latencies):.1f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

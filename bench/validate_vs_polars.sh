#!/usr/bin/env bash
# Benchmark: `emdp validate` (Rust) vs. the same rules in Polars
# (bench/polars_validate.py).
#
# Run from the repo root:   bash bench/validate_vs_polars.sh
#
# Environment knobs:
#   BUILDINGS=1000 DAYS=1000 SEED=42   size of the generated data set
#   DATA=path.csv                      use this file instead (generated if missing)
#   RUNS=5                             timed runs per tool (median wall time reported)
#   WARMUP=1                           untimed runs per tool first (page cache)
#   TODAY=2026-01-01                   pinned --today for both tools
#   PYTHON=python3                     interpreter used to create the venv
#   SKIP_BUILD=1 EMDP=path             skip `cargo build`, use another emdp binary
#
# Everything it creates lives in bench/out/ (gitignored): the venv with Polars,
# the data set, each tool's JSON output and timings.
set -euo pipefail

cd "$(dirname "$0")/.."

BUILDINGS="${BUILDINGS:-1000}"
DAYS="${DAYS:-1000}"
SEED="${SEED:-42}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
TODAY="${TODAY:-2026-01-01}"
PYTHON="${PYTHON:-python3}"
OUT=bench/out
VENV="$OUT/venv"
EMDP="${EMDP:-target/release/emdp}"
SKIP_BUILD="${SKIP_BUILD:-0}"
if [[ -z "${DATA:-}" ]]; then
  if [[ "$BUILDINGS" == 1000 && "$DAYS" == 1000 && "$SEED" == 42 ]]; then
    DATA="$OUT/energy_1m.csv"
  else
    DATA="$OUT/energy_${BUILDINGS}x${DAYS}_s${SEED}.csv"
  fi
fi

mkdir -p "$OUT"

# ---------------------------------------------------------------- machine
echo "== machine"
echo "nproc:  $(nproc)"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel: $(uname -sr)"
echo

# ---------------------------------------------------------------- tools
if [[ ! -x /usr/bin/time ]]; then
  echo "== installing GNU time (/usr/bin/time missing)"
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  fi
  [[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is required" >&2; exit 1; }
fi

echo "== python venv ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian/Ubuntu ship venv separately
    rm -rf "$VENV"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import polars' 2>/dev/null; then
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet polars
fi
echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
echo "polars: $("$PY" -c 'import polars; print(polars.__version__)')"
echo

if [[ "$SKIP_BUILD" != 1 ]]; then
  echo "== cargo build --release -p emdp-cli"
  cargo build --release -p emdp-cli
fi
[[ -x "$EMDP" ]] || { echo "error: $EMDP not built" >&2; exit 1; }
echo

# ---------------------------------------------------------------- data
if [[ ! -s "$DATA" ]]; then
  echo "== generating $DATA (buildings=$BUILDINGS days=$DAYS seed=$SEED)"
  "$EMDP" generate --buildings "$BUILDINGS" --days "$DAYS" --seed "$SEED" --out "$DATA"
fi
echo "== data: $DATA ($(du -h "$DATA" | cut -f1), $(($(wc -l <"$DATA") - 1)) data lines)"
echo

# ---------------------------------------------------------------- timing
# run_tool NAME CMD...  -> runs WARMUP untimed + RUNS timed; writes
#   $OUT/NAME.json (stdout of the first timed run), $OUT/NAME.times ("wall_s maxrss_kb" per run)
run_tool() {
  local name="$1"; shift
  local json="$OUT/$name.json" times="$OUT/$name.times" tmp="$OUT/$name.stdout"
  : >"$times"
  echo "== $name: $*"
  local i rc
  for ((i = 0; i < WARMUP; i++)); do
    "$@" >/dev/null 2>&1 || true
  done
  for ((i = 1; i <= RUNS; i++)); do
    rc=0
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time1" "$@" >"$tmp" 2>"$OUT/$name.stderr" || rc=$?
    # GNU time prepends "Command exited with non-zero status N" on failure
    tail -n1 "$OUT/$name.time1" >>"$times"
    if ((rc != 0)); then
      echo "   run $i: exit status $rc (stderr: $OUT/$name.stderr)" >&2
    fi
    if ! "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp" 2>/dev/null; then
      echo "error: $name did not print a JSON object on stdout (exit $rc); stderr:" >&2
      head -n 20 "$OUT/$name.stderr" >&2
      exit 1
    fi
    ((i == 1)) && cp "$tmp" "$json"
    echo "   run $i: $(tail -n1 "$OUT/$name.time1" | awk '{printf "%6.2f s  %8.1f MiB", $1, $2/1024}')"
  done
  rm -f "$tmp" "$OUT/$name.time1"
}

run_tool emdp "$EMDP" validate "$DATA" --output json --today "$TODAY"
echo
run_tool polars "$PY" bench/polars_validate.py "$DATA" --today "$TODAY"
echo

# ---------------------------------------------------------------- report
echo "== summary (runs=$RUNS, median wall time, max peak RSS; whole process)"
"$PY" - "$OUT/emdp.times" "$OUT/polars.times" <<'EOF'
import statistics, sys

def load(path):
    rows = [line.split() for line in open(path) if line.strip()]
    return [float(w) for w, _ in rows], [int(m) for _, m in rows]

res = {}
for name, path in (("emdp", sys.argv[1]), ("polars", sys.argv[2])):
    wall, rss = load(path)
    res[name] = (statistics.median(wall), max(rss) / 1024)
    print(f"{name:7s} median {res[name][0]:7.2f} s   min {min(wall):7.2f} s   "
          f"max {max(wall):7.2f} s   peak RSS {res[name][1]:8.1f} MiB")
(e_t, e_m), (p_t, p_m) = res["emdp"], res["polars"]
if e_t > 0 and p_t > 0:
    r = p_t / e_t
    if r >= 1:
        print(f"speed:  emdp is {r:.2f}x faster than polars (median wall time)")
    else:
        print(f"speed:  emdp is {1 / r:.2f}x slower than polars (median wall time)")
else:
    print("speed:  a median wall time rounds to 0 s (ratio not computable)")
if e_m > 0:
    print(f"memory: polars/emdp peak RSS = {p_m / e_m:.2f}x")
EOF
echo

echo "== comparing JSON summaries ($OUT/emdp.json vs $OUT/polars.json)"
same=0
if "$PY" - "$OUT/emdp.json" "$OUT/polars.json" <<'EOF'
import json, sys

a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
print("emdp:  ", json.dumps(a, separators=(",", ":")))
print("polars:", json.dumps(b, separators=(",", ":")))
if a == b:
    print("OK: summaries are identical")
    sys.exit(0)

def flat(d, prefix=""):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out

fa, fb = flat(a), flat(b)
missing = object()
print("DIFFERENT: key  emdp  polars")
for k in sorted(set(fa) | set(fb)):
    va, vb = fa.get(k, missing), fb.get(k, missing)
    if va != vb:
        show = lambda v: "<absent>" if v is missing else json.dumps(v)
        print(f"  {k}: {show(va)}  {show(vb)}")
sys.exit(1)
EOF
then same=1; fi

# ---------------------------------------------------------------- optional
if command -v hyperfine >/dev/null; then
  echo
  echo "== hyperfine (optional)"
  hyperfine --ignore-failure --warmup 1 --runs "$RUNS" --export-markdown "$OUT/hyperfine.md" \
    -n emdp "$EMDP validate $DATA --output json --today $TODAY > /dev/null" \
    -n polars "$PY bench/polars_validate.py $DATA --today $TODAY > /dev/null"
else
  echo "(hyperfine not installed: skipping the optional hyperfine run)"
fi

if ((same == 0)); then
  echo "FAIL: emdp and polars summaries differ (see above)" >&2
  exit 1
fi

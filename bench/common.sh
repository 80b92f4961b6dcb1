# Set-up shared by bench/ingest.sh, bench/report.sh and bench/schema_floor.sh (sourced, not
# run): works from the repository root, builds emdp and generates the data set.
#
# Environment knobs (each script lists its own too):
#   BUILDINGS=1000 DAYS=1000 SEED=42   size of the generated data set
#   DATA=path.csv                      use this file instead (generated if missing)
#   SKIP_BUILD=1 EMDP=path             skip `cargo build`, use another emdp binary

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILDINGS="${BUILDINGS:-1000}"
DAYS="${DAYS:-1000}"
SEED="${SEED:-42}"
OUT=bench/out
EMDP="${EMDP:-target/release/emdp}"
SKIP_BUILD="${SKIP_BUILD:-0}"
DATA="${DATA:-$OUT/energy_${BUILDINGS}x${DAYS}_s${SEED}.csv}"
MANIFEST="$DATA.manifest.json"
mkdir -p "$OUT"

# die MESSAGE: prints it with the script's name and exits 1.
die() { echo "bench/$(basename "$0"): $*" >&2; exit 1; }

# busy_ticks: the CPU time the whole machine has spent busy so far (every process and the
# kernel, all cores; /proc/stat, in clock ticks). Two readings around a run give what it cost,
# the database's own processes included, which a process's own time leaves out.
busy_ticks() {
  local _cpu user nice system idle iowait irq softirq steal _rest
  read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
  echo $((user + nice + system + irq + softirq))
}

# cpu_seconds BEFORE AFTER: the busy time between two busy_ticks readings, in seconds.
cpu_seconds() { awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }'; }

# prepare: builds emdp in release mode (unless SKIP_BUILD=1) and generates $DATA with its
# manifest if it is missing.
prepare() {
  if [[ "$SKIP_BUILD" != 1 ]]; then
    cargo build --release -p emdp-cli >&2
  fi
  [[ -x "$EMDP" ]] || die "$EMDP is not built"
  if [[ ! -f "$DATA" ]]; then
    "$EMDP" generate --buildings "$BUILDINGS" --days "$DAYS" --seed "$SEED" --out "$DATA" >&2
  fi
}

#!/usr/bin/env bash
# Cross-checks `emdp analyze` against eemeter (PyPI) on eemeter's bundled daily sample meters.
# Creates a venv under bench/out/, installs eemeter there, builds emdp (release) and runs
# bench/eemeter_crosscheck.py. Exit status: that of the script (1 = beyond tolerance).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
VENV=$OUT/venv-eemeter
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# eemeter 4.1.1 imports pytz without declaring it and fails on pandas 3 (frequency comparison
# in compute_minimum_granularity): pin pandas below 3.
"$VENV/bin/pip" install -q "eemeter==4.1.1" pytz "pandas<3"
cargo build --release -q -p emdp-cli
"$VENV/bin/python" bench/eemeter_crosscheck.py "$PWD/target/release/emdp" "$OUT/crosscheck"

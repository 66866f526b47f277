#!/usr/bin/env bash
# gravity=smart / gravity=face against a centre crop and libvips's attention
# crop, in one run: bench/crops.sh > bench/results/crops-run.txt
# Needs the vips CLI (libvips-tools) and taskset. REPEATS=N, CPU=N to change.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --quiet
bench/make-fixtures.sh >&2
exec python3 bench/crops.py

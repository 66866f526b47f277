#!/usr/bin/env bash
# Issue 16's decode and colour-management measurements in one run, written
# to bench/results/formats.md (see bench/formats.py for what is timed).
#
#   bench/formats.sh          5 timed runs per case
#   bench/formats.sh 3        3
#
# Needs: scripts/deps.sh test (vips, ImageMagick with libheif, cjxl, ICC
# profiles), scripts/test-tools.sh (Pillow, numpy, colour-science).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-5}
cd "$root"
scripts/deps.sh test
scripts/test-tools.sh
bench/make-fixtures.sh >/dev/null
cargo build --release --bin imgflow --example bench_recipe
work=$(mktemp -d /dev/shm/imgflow-formats.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
{
    echo "<!-- bench/formats.sh $runs, $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) -->"
    echo
    .test-tools/venv/bin/python bench/formats.py "$root" target/release/examples/bench_recipe "$work" "$runs"
} | tee bench/results/formats.md

#!/usr/bin/env bash
# `imgflow process DIR -o OUT -j N`: images/s at -j 1 and -j 2, measured in
# one run on the release build, the two interleaved round by round so that
# the machine's load (printed with uptime) weighs on both alike.
#
#   bench/process-parallel.sh            200 images, 3 rounds
#   N=400 ROUNDS=5 bench/process-parallel.sh
#   PROFILE=debug N=40 bench/process-parallel.sh   the debug build (a smoke run;
#                                                  its numbers are not the benchmark)
#
# The images are copies of bench/fixtures/photo-1mp.jpg (1156x866, made by
# bench/make-fixtures.sh, which needs the vips CLI) in a two-level tree;
# the recipe is the default preset (a 256x256 cover thumbnail and a
# 1280-box rendition, both JPEG). Results: bench/results/process-parallel.md.
set -euo pipefail
bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench")"
n="${N:-200}"
rounds="${ROUNDS:-3}"

[ -f "$bench/fixtures/photo-1mp.jpg" ] || "$bench/make-fixtures.sh"
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then
    (cd "$root" && nice cargo build --release --bin imgflow)
else
    (cd "$root" && nice cargo build --bin imgflow)
fi
imgflow="$root/target/$profile/imgflow"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for i in $(seq 0 $((n - 1))); do
    dir="$work/in/set-$((i % 4))/day-$((i % 10))"
    mkdir -p "$dir"
    cp "$bench/fixtures/photo-1mp.jpg" "$dir/photo-$i.jpg"
done

run() { # jobs → images/s
    rm -rf "$work/out"
    local start end
    start=$(date +%s.%N)
    "$imgflow" process "$work/in" -o "$work/out" -j "$1" >/dev/null
    end=$(date +%s.%N)
    local written
    written=$(find "$work/out" -type f | wc -l)
    [ "$written" -eq $((2 * n)) ] || { echo "expected $((2 * n)) outputs, found $written" >&2; exit 1; }
    awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", n / (e - s) }'
}

echo "imgflow process ($profile build), $n images of 1156x866, default preset; $(nproc) CPUs; $(git -C "$root" rev-parse --short HEAD)"
echo "before: $(uptime)"
echo
echo "| round | -j 1 images/s | -j 2 images/s | ratio | load (1 min) |"
echo "|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
    one=$(run 1)
    two=$(run 2)
    load=$(cut -d' ' -f1 /proc/loadavg)
    ratio=$(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", b / a }')
    echo "| $r | $one | $two | ${ratio}x | $load |"
done
echo
echo "after: $(uptime)"

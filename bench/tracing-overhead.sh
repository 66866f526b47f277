#!/usr/bin/env bash
# What the tracing instrumentation costs the image core: `imgflow process`
# at REF (default: the commit before spans were added) and at HEAD, both
# release builds, run under callgrind, which counts instructions (the same
# count whatever else the machine is doing). Prints each case's ratio.
#
#   bench/tracing-overhead.sh [REF]
#
# `imgflow process` installs the log subscriber (INFO), so the spans are
# created and recorded by it; no OTLP exporter runs in `process`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ref="${1:-a56ba38}"
work="$root/target/tracing-overhead"
mkdir -p "$work"

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }

build() { # <rev> <out>
    local tree="$work/tree-$1"
    if [ "$1" = HEAD ]; then tree="$root"; else
        [ -d "$tree" ] || git -C "$root" worktree add --detach -f "$tree" "$1" >/dev/null
    fi
    (cd "$tree" && CARGO_TARGET_DIR="$root/target" cargo build --release --locked --quiet --bin imgflow)
    cp "$root/target/release/imgflow" "$2"
}

build "$ref" "$work/imgflow-ref"
build HEAD "$work/imgflow-head"

input="$root/bench/fixtures/photo-1mp.jpg"
[ -f "$input" ] || "$root/bench/make-fixtures.sh"
cases=(
    'resize,w=800/jpeg,q=80'
    'thumb:resize,w=256,h=256,fit=cover/webp+web:resize,w=1280/watermark,text=imgflow/sharpen,sigma=1/jpeg,q=82'
)
instructions() { # <binary> <recipe>
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" process "$input" \
        -o "$work/out" --recipe "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-14s %-14s %-7s %s\n' "ref ($ref)" "HEAD" "ratio" "recipe"
for recipe in "${cases[@]}"; do
    a=$(instructions "$work/imgflow-ref" "$recipe")
    b=$(instructions "$work/imgflow-head" "$recipe")
    printf '%-14s %-14s %-7s %s\n' "$a" "$b" "$(python3 -c "print(f'{$b/$a:.4f}')")" "$recipe"
done

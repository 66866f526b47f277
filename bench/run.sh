#!/usr/bin/env bash
# The whole benchmark, end to end, on a fresh Debian machine:
#   1. the system tools (libvips, ImageMagick) if missing (apt-get, as root);
#   2. cargo build --release --example bench_recipe;
#   3. bench/make-fixtures.sh (12 MP and 1 MP photo JPEGs, if not there yet);
#   4. bench/compare.py: imgflow vs libvips vs ImageMagick, one thread each,
#      a Markdown table on stdout (creates bench/.venv with pyvips itself);
#   5. with --criterion, also cargo bench --bench pipeline.
#
# Usage: bench/run.sh [--criterion] [compare.py options: --quick, --cases ID,..., --fixtures 12mp]
set -euo pipefail
bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$bench/.."

criterion=0
compare_args=()
for arg in "$@"; do
    case "$arg" in
        --criterion) criterion=1 ;;
        *) compare_args+=("$arg") ;;
    esac
done

missing=()
for pkg in libvips-tools libvips-dev imagemagick fonts-dejavu-core; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: not root; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== cargo build --release --example bench_recipe" >&2
cargo build --release --example bench_recipe

echo "== bench/make-fixtures.sh" >&2
"$bench/make-fixtures.sh" >&2

echo "== bench/compare.py ${compare_args[*]}" >&2
python3 "$bench/compare.py" "${compare_args[@]}"

if [ "$criterion" = 1 ]; then
    if ! grep -q 'bench/pipeline.rs' Cargo.toml; then
        echo "run.sh: Cargo.toml has no [[bench]] name = \"pipeline\" path = \"bench/pipeline.rs\" harness = false" >&2
        exit 1
    fi
    echo "== cargo bench --bench pipeline" >&2
    cargo bench --bench pipeline
fi

#!/usr/bin/env bash
# Make the benchmark fixtures, deterministically, from real photographs:
#   bench/fixtures/photo-12mp.jpg  4000x3000, a 4x4 mosaic of 1000x750 tiles
#   bench/fixtures/photo-1mp.jpg   1156x866,  a 2x2 mosaic of 578x433 tiles
# Tiles are the four photographs (tests/fixtures/rocket.jpg, chelsea.png,
# bench/photos/astronaut.jpg, coffee.jpg) scaled (Lanczos3) and centre-cropped,
# every other one mirrored, plus a fixed-seed Gaussian grain (sigma 2.5, like a
# camera sensor's noise), saved as baseline JPEG q90 4:2:0 without metadata.
# Same libvips version, same bytes; the SHA-256s are printed.
#
# Usage: bench/make-fixtures.sh [--force]    (needs the `vips` CLI: libvips-tools)
set -euo pipefail
bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench")"
out="$bench/fixtures"
force=0
[ "${1:-}" = "--force" ] && force=1

command -v vips >/dev/null || { echo "make-fixtures: the vips CLI is missing (apt-get install libvips-tools)" >&2; exit 1; }

photos=(
    "$root/tests/fixtures/rocket.jpg"
    "$root/tests/fixtures/chelsea.png"
    "$bench/photos/astronaut.jpg"
    "$bench/photos/coffee.jpg"
)
for p in "${photos[@]}"; do
    [ -f "$p" ] || { echo "make-fixtures: missing source photograph $p" >&2; exit 1; }
done

mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# mosaic NAME COLUMNS ROWS TILE_W TILE_H SEED
mosaic() {
    local name=$1 cols=$2 rows=$3 tw=$4 th=$5 seed=$6
    local target="$out/photo-$name.jpg"
    if [ -f "$target" ] && [ "$force" = 0 ]; then
        echo "make-fixtures: $target exists (--force to remake)"
        return
    fi
    local w=$((cols * tw)) h=$((rows * th)) tiles=() r c i p t
    for ((r = 0; r < rows; r++)); do
        for ((c = 0; c < cols; c++)); do
            i=$((r * cols + c))
            p=${photos[$(((r + c) % 4))]}
            t="$tmp/$name-tile$i.v"
            # --size both lets small photographs scale up; --crop centre gives exactly tw x th.
            vips thumbnail "$p" "$t" "$tw" --height "$th" --size both --crop centre
            if [ $((r % 2)) = 1 ]; then  # mirror every other row
                vips flip "$t" "$t.flip.v" horizontal
                mv "$t.flip.v" "$t"
            fi
            tiles+=("$t")
        done
    done
    vips arrayjoin "${tiles[*]}" "$tmp/$name-mosaic.v" --across "$cols"
    vips gaussnoise "$tmp/$name-noise.v" "$w" "$h" --sigma 2.5 --mean 0 --seed "$seed"
    vips add "$tmp/$name-mosaic.v" "$tmp/$name-noise.v" "$tmp/$name-sum.v"
    vips cast "$tmp/$name-sum.v" "$tmp/$name-final.v" uchar
    vips jpegsave "$tmp/$name-final.v" "$tmp/$name.jpg" --Q 90 --subsample-mode on --strip
    mv "$tmp/$name.jpg" "$target"
    echo "make-fixtures: wrote $target ($(vipsheader "$target" | sed 's/.*: //'), $(stat -c %s "$target") bytes)"
}

mosaic 12mp 4 4 1000 750 12
mosaic 1mp 2 2 578 433 1
(cd "$out" && sha256sum photo-12mp.jpg photo-1mp.jpg)

#!/usr/bin/env bash
# AVIF encode time and bytes, imgflow vs libvips heifsave, in one run:
#   bench/avif.sh      → bench/results/avif.md
# Needs: a release build, libvips-tools with libheif's AV1 encoder (Debian
# 12's libheif1 carries libaom), and Pillow with AVIF (scripts/test-tools.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --bin imgflow
bench/make-fixtures.sh >/dev/null
scripts/test-tools.sh
vips -l | grep heifsave >/dev/null || { echo "libvips has no heifsave" >&2; exit 1; }
.test-tools/venv/bin/python bench/avif.py target/release/imgflow bench/fixtures/photo-1mp.jpg bench/results/avif.md

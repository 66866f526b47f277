#!/usr/bin/env bash
# System packages imgflow needs, installed from Debian if missing:
#   scripts/deps.sh build   cmake and nasm, to build the bundled libjpeg-turbo
#   scripts/deps.sh test    the above, plus ImageMagick and libvips's tools,
#                           the independent references the tests compare with,
#                           Chromium for the browser tests, and rclone (a
#                           drop-in client the docs show)
set -euo pipefail

packages=(cmake nasm)
if [ "${1:-build}" = test ]; then
    packages+=(imagemagick libvips-tools chromium rclone)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Run one cargo-fuzz target for a while (default 600 s) on stable Rust.
#
#   fuzz/run.sh recipe [SECONDS] [extra libFuzzer flags...]
#   fuzz/run.sh decode [SECONDS] [extra libFuzzer flags...]
#   fuzz/run.sh job    [SECONDS] [extra libFuzzer flags...]
#
# RUSTC_BOOTSTRAP=1 lets stable rustc take the nightly-only flags cargo-fuzz
# passes (-Zsanitizer=address, ...). Not for CI: see fuzz/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
target="${1:?usage: fuzz/run.sh recipe|decode|job [SECONDS] [libFuzzer flags...]}"
secs="${2:-600}"
shift $(( $# >= 2 ? 2 : 1 ))
flags=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
case "$target" in
    recipe) flags+=(-dict=dicts/recipe.dict) ;;
    decode) ;;
    job) flags+=(-dict=dicts/recipe.dict) ;;
    *) echo "unknown target $target (recipe, decode, job)" >&2; exit 2 ;;
esac
# The regressions are replayed first (they must pass), then the corpus grows
# in corpus/<target>/ (only seed-* files there are in git).
if compgen -G "regressions/$target/*" >/dev/null; then
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" regressions/"$target"/* -- -runs=0
fi
exec env RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" corpus/"$target" -- "${flags[@]}" "$@"

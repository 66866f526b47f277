#!/usr/bin/env bash
# Issue 8's evaluation, end to end (not a test): the old paper's load
# profiles against imgflow's copy of the old API, the native presigned flow
# at a fixed rate and at saturation with 1 and 2 workers, `imgflow process`
# on the same image; then the charts and bench/RESULTS.md.
#
#   bench/evaluate.sh              the full run (about 25 min after the build): measures into
#                                  bench/.evaluate/run-*/results/ and, once that has succeeded, moves
#                                  the previous bench/results/evaluation/ to evaluation-before/
#                                  (replacing an older one) and the new run into evaluation/, then
#                                  rewrites bench/RESULTS.md with before/after columns against it
#                                  (if the report fails, the move is undone)
#   bench/evaluate.sh --quick      a smoke run (about 1 min)        } into bench/.evaluate/run-*/results/,
#   bench/evaluate.sh [FLAGS...]   any loadgen flags, e.g.          } committed results untouched
#                                  --phases native --light-rate 2
#
# Environment (optional):
#   EVAL_COMMIT=REV   measure that commit: exported with `git archive` into
#                     bench/.evaluate/src-<sha>/, built in bench/.evaluate/target/,
#                     so other people's uncommitted work is not measured
#   EVAL_BEFORE=DIR   any mode: compare against that earlier run's raw results (a
#                     results directory of this script, e.g. bench/results/evaluation
#                     for a --quick run) instead of the full run's evaluation-before/
#   EVAL_PORT=4596 EVAL_API_PORT=18096   the private LocalStack and the api (never 4566)
#
# Needs what scripts/localstack.sh needs (Python 3.11; it installs the venv
# if missing), cargo, and the `vips` CLI for the fixture (installed with apt
# when missing and run as root). Everything it starts is stopped on exit,
# whatever the outcome; it never touches a LocalStack on another port.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench="$root/bench"
state="$bench/.evaluate"
run="$state/run-$(date -u +%Y%m%d-%H%M%S)-$$"
port="${EVAL_PORT:-4596}"
api_port="${EVAL_API_PORT:-18096}"
mkdir -p "$run/pids"
[ -f "$state/.gitignore" ] || echo '*' >"$state/.gitignore"

if [ "$port" = 4566 ]; then
    echo "evaluate: refusing port 4566 (the shared LocalStack)" >&2
    exit 2
fi

flags=()
for arg in "$@"; do
    case "$arg" in
        --quick) flags+=(--profiles 2,4 --rounds 5 --light-n 20 --sat-n 60 --process-n 20) ;;
        *) flags+=("$arg") ;;
    esac
done
# Every run measures into its own directory; a full run's replaces the committed
# results only after it has succeeded (step 5), so a failed run loses nothing.
out="$run/results"
if [ $# -eq 0 ]; then
    final="$bench/results/evaluation"
    before_dir="$bench/results/evaluation-before"
    results="$bench/RESULTS.md"
else
    final=""
    results="$out/RESULTS.md"
fi
# The run to compare against, checked now rather than after 25 minutes.
eval_before=""
if [ -n "${EVAL_BEFORE:-}" ]; then
    if [ ! -f "$EVAL_BEFORE/phases.csv" ]; then
        echo "evaluate: EVAL_BEFORE=$EVAL_BEFORE has no phases.csv (not a results directory of this script)" >&2
        exit 2
    fi
    eval_before=$(cd "$EVAL_BEFORE" && pwd)
fi
# The same directory? (Compared as physical paths.)
same_dir() { [ -d "$1" ] && [ -d "$2" ] && [ "$(cd "$1" && pwd -P)" = "$(cd "$2" && pwd -P)" ]; }

# The harness stops what it starts; this is for a harness that died.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for f in "$run"/pids/*.pid; do
        [ -e "$f" ] || continue
        kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
    echo "evaluate: logs in $run" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The binaries: release only (the harness also refuses a debug build).
src="$root"
target="${CARGO_TARGET_DIR:-$root/target}"
commit=$(git -C "$root" rev-parse HEAD)
# Uncommitted changes to what is built, before or after the build, make the run "dirty".
changed() { [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- src examples Cargo.toml Cargo.lock)" ]; }
dirty=false
changed && dirty=true
if [ -n "${EVAL_COMMIT:-}" ]; then
    commit=$(git -C "$root" rev-parse --verify "${EVAL_COMMIT}^{commit}")
    dirty=false
    src="$state/src-$commit"
    target="$state/target"
    if [ ! -d "$src" ]; then
        mkdir -p "$src.tmp"
        git -C "$root" archive "$commit" | tar -x -C "$src.tmp"
        mv "$src.tmp" "$src"
    fi
fi
echo "evaluate: cargo build --release --locked --bin imgflow --example loadgen (commit ${commit:0:12}${EVAL_COMMIT:+, exported})" >&2
(cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet --bin imgflow --example loadgen)
[ -z "${EVAL_COMMIT:-}" ] && changed && dirty=true
# Private copies: a rebuild in a shared target/ must not change what runs.
cp "$target/release/imgflow" "$target/release/examples/loadgen" "$run/"

# 2. The image, LocalStack's venv, the report's venv.
if [ ! -f "$bench/fixtures/photo-1mp.jpg" ]; then
    if ! command -v vips >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null
    fi
    "$bench/make-fixtures.sh"
fi
"$root/scripts/localstack.sh" install
venv="$bench/.report-venv"
want=$(sha256sum "$bench/report-requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
    echo "evaluate: installing matplotlib into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$bench/report-requirements.txt"
    echo "$want" >"$venv/.stamp"
fi

# 3. What the report says about the run and the machine.
command="bench/evaluate.sh${*:+ $*}"
[ -n "${EVAL_BEFORE:-}" ] && command="EVAL_BEFORE=${EVAL_BEFORE} $command"
[ -n "${EVAL_COMMIT:-}" ] && command="EVAL_COMMIT=${EVAL_COMMIT} $command"
mkdir -p "$out"
EVAL_DATE=$(date -u +%Y-%m-%d) EVAL_COMMIT_SHA="$commit" EVAL_DIRTY="$dirty" EVAL_COMMAND="$command" \
EVAL_RUSTC=$(rustc --version) EVAL_LOCALSTACK=$("$root/.localstack/venv/bin/pip" show localstack-core 2>/dev/null | sed -n 's/^Version: //p') \
    python3 - "$run/machine.json" <<'EOF'
import json, os, platform, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
osname = next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME")), "?")
e = os.environ
json.dump({
    "date": e["EVAL_DATE"], "commit": e["EVAL_COMMIT_SHA"], "dirty": e["EVAL_DIRTY"] == "true",
    "command": e["EVAL_COMMAND"], "cpu": cpu, "cores": os.cpu_count(),
    "memory": f"{mem / 1024 / 1024:.0f} GiB", "kernel": platform.release(), "os": osname,
    "rustc": e["EVAL_RUSTC"], "localstack": f"localstack-core {e['EVAL_LOCALSTACK']}, host mode (no Docker), S3 + SQS",
}, open(sys.argv[1], "w"), indent=2)
EOF

# 4. The measurements.
"$run/loadgen" --bin "$run/imgflow" --image "$bench/fixtures/photo-1mp.jpg" \
    --venv "$root/.localstack/venv" --run-dir "$run" --out "$out" \
    --port "$port" --api-port "$api_port" "${flags[@]}"
# The per-request rows are the large ones.
gzip -n -f "$out"/paper_requests.csv "$out"/native_jobs.csv 2>/dev/null || true
cp "$run/machine.json" "$out/machine.json"

# 5. A full run: the new results replace the previous ones, which become the
# before (an older before goes to $run/, with the logs). The report needs its
# data in place (its links and charts are relative to it), so on failure this is undone.
moved_before=false moved_final=false
if [ -n "$final" ]; then
    # EVAL_BEFORE names a directory as it was when the run started.
    before_is_final=false before_is_before=false
    if [ -n "$eval_before" ]; then
        if same_dir "$eval_before" "$final"; then before_is_final=true; fi
        if same_dir "$eval_before" "$before_dir"; then before_is_before=true; fi
    fi
    if [ -d "$final" ]; then
        if [ -e "$before_dir" ]; then
            mv "$before_dir" "$run/evaluation-before.old"
            moved_before=true
            if $before_is_before; then eval_before="$run/evaluation-before.old"; fi
        fi
        mv "$final" "$before_dir"
        moved_final=true
        if $before_is_final || [ -z "$eval_before" ]; then eval_before="$before_dir"; fi
    fi
    mv "$out" "$final"
    out="$final"
fi
undo() {
    [ -n "$final" ] || return 0
    echo "evaluate: the report failed; putting the previous results back (this run's are in $run/results)" >&2
    mv "$final" "$run/results"
    if $moved_final; then mv "$before_dir" "$final"; fi
    if $moved_before; then mv "$run/evaluation-before.old" "$before_dir"; fi
}

# 6. Charts, summary.csv and the report.
before_args=()
if [ -n "$eval_before" ]; then before_args=(--before "$eval_before"); fi
if ! "$venv/bin/python" "$bench/report.py" --data "$out" --results "$results" --machine "$out/machine.json" \
        "${before_args[@]}"; then
    undo
    exit 1
fi

#!/usr/bin/env bash
# Issue 8's evaluation, end to end (not a test): the old paper's load
# profiles against imgflow's copy of the old API, the native presigned flow
# at a fixed rate and at saturation with 1 and 2 workers, `imgflow process`
# on the same image; then the charts and bench/RESULTS.md.
#
#   bench/evaluate.sh              the full run (about 25 min after the build);
#                                  rewrites bench/results/evaluation/ and bench/RESULTS.md
#   bench/evaluate.sh --quick      a smoke run (about 1 min)        } into bench/.evaluate/run-*/results/,
#   bench/evaluate.sh [FLAGS...]   any loadgen flags, e.g.          } committed results untouched
#                                  --phases native --light-rate 2
#
# Environment (optional):
#   EVAL_COMMIT=REV   measure that commit: exported with `git archive` into
#                     bench/.evaluate/src-<sha>/, built in bench/.evaluate/target/,
#                     so other people's uncommitted work is not measured
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
if [ $# -eq 0 ]; then
    out="$bench/results/evaluation"
    results="$bench/RESULTS.md"
else
    out="$run/results"
    results="$out/RESULTS.md"
fi

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
[ -n "${EVAL_COMMIT:-}" ] && command="EVAL_COMMIT=${EVAL_COMMIT} $command"
mkdir -p "$out"
rm -f "$out"/*.csv "$out"/*.csv.gz "$out"/*.png "$out"/meta.json
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

# 5. Charts, summary.csv and the report.
"$venv/bin/python" "$bench/report.py" --data "$out" --results "$results" --machine "$out/machine.json"

#!/usr/bin/env bash
# Soak harness (not a test): N uploads through the presigned flow while one
# worker is killed (-9) three times and LocalStack is paused twice; prints
# uploads, manifests done/failed, DLQ count, duplicates and lost. See
# bench/SOAK.md.
#
#   bench/soak.sh [N]          N uploads (default 2000, SOAK_N), 10% poison
#
# Environment (all optional):
#   SOAK_N=2000 SOAK_POISON_PCT=10       how many uploads, how many poison
#   SOAK_PORT=4576                       this harness's own LocalStack (never 4566's)
#   SOAK_API_PORT=18080                  imgflow api
#   SOAK_BIN=target/release/imgflow      binary to run (built first unless SOAK_BUILD=0)
#   SOAK_PAUSE_SECS=25 SOAK_WAIT_SECS=600 SOAK_UPLOADERS=8
#   SOAK_UPLOAD_SECS=180                 uploads are paced over this long (the chaos happens meanwhile)
#   SOAK_SEED=...                        repeat a run's plan (its seed is printed)
#   SOAK_KEEP=1                          keep bench/.soak/run-*/ on success (always kept on failure)
#
# Everything it starts (its LocalStack, the api, the workers) is stopped on
# exit, whatever the outcome. It never touches a LocalStack on another port.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n="${1:-${SOAK_N:-2000}}"
port="${SOAK_PORT:-4576}"
api_port="${SOAK_API_PORT:-18080}"
listen="127.0.0.1:$port"
venv="$root/.localstack/venv"
bin="${SOAK_BIN:-$root/target/release/imgflow}"

if [ "$port" = "4566" ] && [ "${SOAK_ALLOW_4566:-0}" != "1" ]; then
    echo "soak: refusing port 4566 (the shared LocalStack); set SOAK_ALLOW_4566=1 if it is yours" >&2
    exit 2
fi

state="$root/bench/.soak"
run="$state/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$run/tmp" "$run/pids" "$run/logs"
[ -f "$state/.gitignore" ] || echo '*' > "$state/.gitignore"

ls_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Whatever soak.py started and may not have stopped (it also cleans up itself).
    for f in "$run"/pids/*.pid; do
        [ -e "$f" ] || continue
        local pid
        pid=$(cat "$f")
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    if [ -n "$ls_pid" ] && kill -0 "$ls_pid" 2>/dev/null; then
        # It may be paused: wake it so it can handle TERM.
        kill -CONT -- "-$ls_pid" 2>/dev/null || true
        kill -TERM -- "-$ls_pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$ls_pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL -- "-$ls_pid" 2>/dev/null || true
        echo "soak: stopped LocalStack on $listen" >&2
    fi
    if [ "$rc" = 0 ] && [ "${SOAK_KEEP:-0}" != "1" ]; then
        rm -rf "$run/tmp" "$run/imgflow"
    fi
    echo "soak: logs in $run" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The binary.
if [ "${SOAK_BUILD:-1}" = "1" ]; then
    echo "soak: cargo build --release --bin imgflow" >&2
    (cd "$root" && cargo build --release --bin imgflow --quiet)
fi
[ -x "$bin" ] || { echo "soak: no binary at $bin" >&2; exit 2; }
# A private copy: the target dir is shared, and a rebuild during the run must
# not change what a restarted worker runs.
cp "$bin" "$run/imgflow"
bin="$run/imgflow"

# 2. Our own LocalStack: the logic of scripts/localstack.sh, with its own
# state dir, port, TMPDIR and cwd, so it coexists with the shared one on 4566.
if [ ! -x "$venv/bin/python" ]; then
    "$root/scripts/localstack.sh" install
fi
if curl -fsS --max-time 2 "http://$listen/_localstack/health" >/dev/null 2>&1; then
    echo "soak: something already answers on $listen; pick another SOAK_PORT" >&2
    exit 2
fi
echo "soak: starting LocalStack on $listen (log: $run/logs/localstack.log)" >&2
(
    cd "$run"
    export SERVICES=s3,sqs GATEWAY_LISTEN="$listen" DISABLE_EVENTS=1 \
        SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 S3_SKIP_SIGNATURE_VALIDATION=0 \
        LOCALSTACK_HOST="$listen" SQS_ENDPOINT_STRATEGY=path \
        TMPDIR="$run/tmp" LOCALSTACK_VOLUME_DIR="$run/tmp/volume"
    # setsid: its own process group, which the harness pauses (SIGSTOP) and ends.
    setsid "$venv/bin/python" -m localstack.runtime.main >"$run/logs/localstack.log" 2>&1 </dev/null &
    echo $! >"$run/localstack.pid"
)
ls_pid=$(cat "$run/localstack.pid")
ready=0
for _ in $(seq 1 120); do
    body=$(curl -fsS --max-time 2 "http://$listen/_localstack/health" 2>/dev/null || true)
    if echo "$body" | grep -Eq '"s3": *"(running|available)"' &&
        echo "$body" | grep -Eq '"sqs": *"(running|available)"'; then
        ready=1
        break
    fi
    kill -0 "$ls_pid" 2>/dev/null || break
    sleep 0.5
done
if [ "$ready" != 1 ]; then
    echo "soak: LocalStack did not become healthy; last lines:" >&2
    tail -n 30 "$run/logs/localstack.log" >&2
    exit 1
fi
ls_pgid=$(ps -o pgid= -p "$ls_pid" | tr -d ' ')
if [ "$ls_pgid" != "$ls_pid" ]; then
    echo "soak: LocalStack ($ls_pid) is not its own process group leader ($ls_pgid); refusing to SIGSTOP it" >&2
    exit 1
fi
echo "soak: LocalStack ready (pid/pgid $ls_pid)" >&2

# 3. The run itself.
"$venv/bin/python" "$root/bench/soak.py" \
    --root "$root" --run-dir "$run" --bin "$bin" \
    --endpoint "http://$listen" --localstack-pgid "$ls_pgid" \
    --api-port "$api_port" -n "$n" \
    --poison-pct "${SOAK_POISON_PCT:-10}" --pause-secs "${SOAK_PAUSE_SECS:-25}" \
    --wait-secs "${SOAK_WAIT_SECS:-600}" --uploaders "${SOAK_UPLOADERS:-8}" \
    --upload-secs "${SOAK_UPLOAD_SECS:-180}" ${SOAK_SEED:+--seed "$SOAK_SEED"}

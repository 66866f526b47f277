#!/usr/bin/env bash
# The main job on one machine: start LocalStack, create the buckets and queue
# (`imgflow setup`), start API + worker (`imgflow up`), then send a real
# photograph through the presigned flow and print where the result is.
#
#   scripts/demo.sh [IMAGE] [RECIPE]      defaults: tests/fixtures/rocket.jpg, resize,w=320/jpeg
#   KEEP=1 scripts/demo.sh                leave LocalStack and `imgflow up` running afterwards
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

image="${1:-tests/fixtures/rocket.jpg}"
recipe="${2:-resize,w=320/jpeg}"
listen="${IMGFLOW_LISTEN:-127.0.0.1:8080}"
out=target/demo-output
log=target/demo-imgflow.log

started=0
if ! scripts/localstack.sh status; then
    scripts/localstack.sh start
    started=1
fi

scripts/deps.sh build
cargo build --locked --quiet
bin=target/debug/imgflow

"$bin" setup
# A short long poll: on exit the worker waits out its open poll (so no
# message is stranded), and the demo should not wait 20 s for that.
IMGFLOW_POLL_WAIT=2 "$bin" up --listen "$listen" >"$log" 2>&1 &
up=$!
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "still running: imgflow up (pid $up, log $log) and LocalStack (scripts/localstack.sh stop)"
        return
    fi
    kill "$up" 2>/dev/null && wait "$up" 2>/dev/null || true
    if [ "$started" = 1 ]; then scripts/localstack.sh stop; fi
}
trap cleanup EXIT

for _ in $(seq 1 50); do
    curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break
    kill -0 "$up" 2>/dev/null || { echo "imgflow up exited; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.2
done

echo "== sending $image through the presigned flow with recipe $recipe"
"$bin" submit "$image" --recipe "$recipe" --api "http://$listen" -o "$out"

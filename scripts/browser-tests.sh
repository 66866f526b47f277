#!/usr/bin/env bash
# Browser acceptance tests in real headless Chromium (tests/browser/run.py):
# the console, a cross-origin page (allowed and refused origins, job tokens)
# and 50 SSE clients at once, against `imgflow api` + `imgflow worker`.
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 scripts/browser-tests.sh
#
# Needs a running LocalStack (scripts/localstack.sh start). Installs, when
# missing, Debian's chromium (apt) and Playwright for Python in
# .browser-tests/venv (pinned in scripts/browser-requirements.txt); never
# runs `playwright install`. IMGFLOW_BIN picks the binary (default: a debug
# build). Each run uses its own buckets and queue; screenshots and logs land
# in target/browser-screenshots/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
endpoint="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
venv=.browser-tests/venv
reqs=scripts/browser-requirements.txt
shots="$root/target/browser-screenshots"
mkdir -p "$shots"

if [ ! -x /usr/bin/chromium ]; then
    echo "browser-tests: installing Debian's chromium" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
    echo "browser-tests: installing Playwright into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
    echo "$want" > "$venv/.stamp"
fi
if [ -z "${IMGFLOW_BIN:-}" ]; then
    cargo build --quiet --bin imgflow
    IMGFLOW_BIN="$root/target/debug/imgflow"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); page_port=$(free_port); stranger_port=$(free_port)
run="browser-$(date +%s)-$$"
key="browser-test-key-$RANDOM$RANDOM"
export AWS_ENDPOINT_URL="$endpoint" IMGFLOW_INBOX="$run-inbox" IMGFLOW_OUTBOX="$run-outbox" \
    IMGFLOW_QUEUE="$run-jobs" RUST_LOG="${RUST_LOG:-info}"
# The console's own origin uploads to S3 too, so it is listed beside the page's.
export IMGFLOW_CORS_ORIGINS="http://127.0.0.1:$api_port http://127.0.0.1:$page_port"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

"$IMGFLOW_BIN" setup >"$shots/setup.log" 2>&1
IMGFLOW_LISTEN="127.0.0.1:$api_port" IMGFLOW_API_KEY_SHA256=$(printf %s "$key" | sha256sum | cut -d' ' -f1) \
    IMGFLOW_TOKEN_SECRET="browser-tests-$RANDOM$RANDOM$RANDOM" \
    "$IMGFLOW_BIN" api >"$shots/api.log" 2>&1 &
pids+=($!)
IMGFLOW_WORKER_LISTEN=127.0.0.1:0 IMGFLOW_POLL_WAIT=1 "$IMGFLOW_BIN" worker >"$shots/worker.log" 2>&1 &
pids+=($!)
python3 -m http.server "$page_port" --bind 127.0.0.1 --directory tests >/dev/null 2>&1 &
pids+=($!)
python3 -m http.server "$stranger_port" --bind 127.0.0.1 --directory tests >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 \
        && curl -fsS "http://127.0.0.1:$page_port/browser/crossorigin.html" >/dev/null 2>&1 && break
    sleep 0.2
done

API="http://127.0.0.1:$api_port" API_KEY="$key" ENDPOINT="$endpoint" OUTBOX="$IMGFLOW_OUTBOX" \
    PAGE="http://127.0.0.1:$page_port" STRANGER="http://127.0.0.1:$stranger_port" \
    FIXTURES="$root/tests/fixtures" SHOTS="$shots" \
    "$venv/bin/python" tests/browser/run.py

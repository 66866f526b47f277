#!/usr/bin/env bash
# Every check imgflow has, exactly as CI runs them (.ci/run calls this):
# formatting, clippy, docs, one build, then the suites — unit and
# integration tests, the deploy checks, the browser tests and schemathesis —
# in parallel against one real LocalStack that this script installs and
# starts (and stops again if it started it). Each suite's output goes to
# target/test-logs/<suite>.log and is printed whole when the suite ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh test
scripts/test-tools.sh
export IMGFLOW_TEST_PYTHON="$PWD/.test-tools/venv/bin/python"
export PATH="$PWD/.test-tools/venv/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
echo "== cargo build (every test target and the binary, once)"
cargo test --locked --no-run --quiet

started=0
if ! scripts/localstack.sh status; then
    scripts/localstack.sh start
    started=1
fi
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -- -"$pid" 2>/dev/null || true; done
    if [ "$started" = 1 ]; then scripts/localstack.sh stop; fi
}
trap cleanup EXIT

logs=target/test-logs
mkdir -p "$logs"
names=()
# suite NAME COMMAND...: runs in the background, in its own process group.
suite() {
    local name=$1
    shift
    names+=("$name")
    setsid bash -c '"$@"' _ "$@" >"$logs/$name.log" 2>&1 &
    pids+=($!)
    echo "== started $name ($logs/$name.log)"
}
export AWS_ENDPOINT_URL=http://127.0.0.1:4566 IMGFLOW_BIN="$PWD/target/debug/imgflow"
suite cargo-test cargo test --locked
suite deploy-checks scripts/deploy-checks.sh all   # Dockerfile, compose, k8s, infra/ offline; the compose init hook
suite browser scripts/browser-tests.sh               # headless Chromium, Playwright
suite schemathesis scripts/schemathesis.sh          # generated requests against /openapi.json

failed=()
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then status=passed; else status=FAILED; failed+=("${names[$i]}"); fi
    echo
    echo "==== ${names[$i]}: $status"
    cat "$logs/${names[$i]}.log"
done
pids=()
echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "test.sh: every suite passed (${names[*]})"

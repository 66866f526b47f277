#!/usr/bin/env bash
# Every check imgflow has, exactly as CI runs them (.ci/run calls this):
# formatting, clippy, docs, then unit and integration tests against a real
# LocalStack that this script installs and starts (and stops again if it
# started it).
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

started=0
if ! scripts/localstack.sh status; then
    scripts/localstack.sh start
    started=1
fi
cleanup() { if [ "$started" = 1 ]; then scripts/localstack.sh stop; fi; }
trap cleanup EXIT

echo "== cargo test (integration tests use LocalStack on 127.0.0.1:4566)"
cargo test --locked

scripts/deploy-checks.sh all   # Dockerfile, compose, k8s, infra/ offline; the compose init hook

echo "== browser acceptance tests (headless Chromium, Playwright)"
AWS_ENDPOINT_URL=http://127.0.0.1:4566 scripts/browser-tests.sh

echo "== schemathesis against /openapi.json"
scripts/schemathesis.sh

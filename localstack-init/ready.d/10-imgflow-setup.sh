#!/bin/bash
# LocalStack runs this once it is ready (compose.yaml mounts this folder at
# /etc/localstack/init/ready.d). It runs the real `imgflow setup`, the binary
# compose's imgflow-bin service copied out of the imgflow image, so the
# resources here are exactly those `imgflow setup` makes everywhere else:
# one definition (src/setup/), nothing to drift. Names come from the
# container's IMGFLOW_INBOX / IMGFLOW_OUTBOX / IMGFLOW_QUEUE.
set -euo pipefail

bin="${IMGFLOW_BIN:-/opt/imgflow/imgflow}"
# The libraries the binary links that LocalStack's image lacks (libheif and
# its codecs), copied beside it by imgflow-bin.
lib="$(dirname "$bin")/lib"
if [ -d "$lib" ]; then
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
AWS_ENDPOINT_URL="${IMGFLOW_SETUP_ENDPOINT:-http://127.0.0.1:4566}" "$bin" setup
# compose's health check waits for this file before starting the API and worker.
touch "${IMGFLOW_READY_FILE:-/tmp/imgflow-ready}"

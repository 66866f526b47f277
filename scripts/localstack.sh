#!/usr/bin/env bash
# LocalStack (S3 + SQS, SNS for `setup --events-topic`, and CloudFormation +
# IAM + STS for the infra/ test) in
# host mode, from a project-local virtualenv.
#
#   scripts/localstack.sh install   create .localstack/venv from the pinned requirements
#   scripts/localstack.sh start     install if needed, start (or reuse) it, wait for health
#   scripts/localstack.sh stop      stop the one this script started
#   scripts/localstack.sh status    exit 0 when it answers on 127.0.0.1:4566
#
# LOCALSTACK_LISTEN=127.0.0.1:4600 runs a second one beside the default (its
# pid and log files carry the port, so the two never touch each other's).
#
# There is no Docker engine on the machines this project is built on, so this
# runs `python -m localstack.runtime.main` directly. Signature checks on
# presigned URLs are switched ON (S3_SKIP_SIGNATURE_VALIDATION=0) so tests see
# what real S3 does.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$root/.localstack"
venv="$state/venv"
reqs="$root/scripts/localstack-requirements.txt"
listen="${LOCALSTACK_LISTEN:-127.0.0.1:4566}"
suffix=""
[ "$listen" = "127.0.0.1:4566" ] || suffix="-${listen##*:}"
pidfile="$state/localstack$suffix.pid"
logfile="$state/localstack$suffix.log"
health="http://$listen/_localstack/health"
python="${PYTHON:-python3}"

healthy() {
    # Both services must report "running" or "available".
    local body
    body=$(curl -fsS --max-time 2 "$health" 2>/dev/null) || return 1
    for svc in s3 sqs; do
        echo "$body" | grep -Eq "\"$svc\": *\"(running|available)\"" || return 1
    done
}

install() {
    # The stamp holds the requirements' checksum, so a changed pin reinstalls.
    local want have=""
    want=$(sha256sum "$reqs" | cut -d' ' -f1)
    [ -f "$venv/.stamp" ] && have=$(cat "$venv/.stamp")
    if [ "$want" = "$have" ] && [ -x "$venv/bin/python" ]; then
        return 0
    fi
    echo "localstack: installing into $venv (about 2 minutes the first time)" >&2
    mkdir -p "$state"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
    echo "$want" > "$venv/.stamp"
}

start() {
    if healthy; then
        echo "localstack: already running on $listen" >&2
        return 0
    fi
    install
    echo "localstack: starting on $listen (log: $logfile)" >&2
    (
        cd "$state"
        # cloudformation,iam,sts: tests/it/infra.rs deploys infra/imgflow.yaml;
        # sns: tests/it/events.rs sends "job finished" events to a topic.
        export SERVICES=s3,sqs,sns,cloudformation,iam,sts GATEWAY_LISTEN="$listen" DISABLE_EVENTS=1 \
            SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 S3_SKIP_SIGNATURE_VALIDATION=0 \
            LOCALSTACK_HOST="$listen" SQS_ENDPOINT_STRATEGY=path
        # setsid: its own process group, so `stop` can end it and its children.
        setsid "$venv/bin/python" -m localstack.runtime.main >"$logfile" 2>&1 < /dev/null &
        echo $! > "$pidfile"
    )
    for _ in $(seq 1 120); do
        if healthy; then
            echo "localstack: ready" >&2
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "localstack: exited during start-up; last lines of $logfile:" >&2
            tail -n 30 "$logfile" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "localstack: not healthy after 60 s; last lines of $logfile:" >&2
    tail -n 30 "$logfile" >&2
    return 1
}

stop() {
    [ -f "$pidfile" ] || { echo "localstack: not started by this script" >&2; return 0; }
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "localstack: stopped" >&2
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) healthy ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Checks of everything that ships imgflow, offline: no Docker engine, no
# cluster, no AWS account (scripts/test.sh runs `all`).
#
#   scripts/deploy-checks.sh          static: Dockerfile (hadolint), compose.yaml (compose spec),
#                                     infra/ (cfn-lint), every k8s overlay and example rendered by
#                                     `kubectl kustomize` into `kubernetes-validate --strict`, KEDA
#                                     objects against k8s/schemas/keda.json, the rules in
#                                     scripts/deploy_checks.py, the Grafana dashboard
#   scripts/deploy-checks.sh hook     compose's LocalStack ready.d hook, for real: a private
#                                     LocalStack (port 4599) runs localstack-init/ready.d with
#                                     target/debug/imgflow and must report it SUCCESSFUL
#   scripts/deploy-checks.sh all      both
#
# The tools are pinned in scripts/deploy-checks-requirements.txt and
# installed into .deploy-checks/venv (reinstalled when the pins change).
# kubectl comes from the machine (Debian's google-cloud-cli kubectl).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=.deploy-checks
venv=$state/venv
reqs=scripts/deploy-checks-requirements.txt
# The newest Kubernetes whose schemas kubernetes-validate bundles.
k8s_version=1.37.0
failed=0

install() {
    local want
    want=$(sha256sum "$reqs" | cut -d' ' -f1)
    if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
        echo "deploy-checks: installing the pinned tools into $venv" >&2
        rm -rf "$venv"
        mkdir -p "$state"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
        echo "$want" > "$venv/.stamp"
    fi
}

check() {
    local name=$1
    shift
    if "$@"; then
        echo "  ok   $name"
    else
        echo "  FAIL $name"
        failed=1
    fi
}

# One kustomization: render, validate strictly, then the rules no schema has.
k8s() {
    local dir=$1 out="$state/rendered/${1//\//_}.yaml"
    mkdir -p "$state/rendered"
    kubectl kustomize "$dir" > "$out" || return 1
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$out" > "$out.validate" 2>&1 \
        || { cat "$out.validate"; return 1; }
    "$venv/bin/python" scripts/deploy_checks.py k8s "$out" "$out.validate"
}

static() {
    install
    command -v kubectl >/dev/null || { echo "deploy-checks: kubectl is not installed" >&2; exit 1; }
    echo "== deploy checks (static, offline)"
    check "Dockerfile (hadolint)" "$venv/bin/hadolint" Dockerfile
    check "compose.yaml (compose spec)" \
        "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec -q compose.yaml
    check "infra/imgflow.yaml (cfn-lint)" "$venv/bin/cfn-lint" infra/imgflow.yaml
    check "localstack-init hook (bash -n, executable)" \
        bash -c 'for f in localstack-init/ready.d/*.sh; do bash -n "$f" && test -x "$f" || exit 1; done'
    # Every overlay builds on its own (components live in k8s/components/), and the documented combinations with
    # the hpa and keda components.
    for dir in k8s/base k8s/overlays/*/ k8s/examples/*/; do
        dir=${dir%/}
        check "$dir (kustomize, kubernetes-validate --strict $k8s_version, rules)" k8s "$dir"
    done
    check "infra/observability (YAML parses)" "$venv/bin/python" -c \
        'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' \
        infra/observability/*.y*ml infra/observability/grafana/provisioning/*/*.yaml
    check "Grafana dashboard (metrics defined in src/)" \
        "$venv/bin/python" scripts/deploy_checks.py dashboard infra/observability/grafana/dashboards/imgflow.json
}

# LocalStack's init machinery running the hook compose mounts, with the
# binary a developer just built standing in for the one compose copies in.
hook() {
    local port=4599 bin="${CARGO_TARGET_DIR:-$root/target}/debug/imgflow" run="$root/$state/hook"
    [ -x "$bin" ] || { echo "deploy-checks: build target/debug/imgflow first" >&2; exit 1; }
    "$root/scripts/localstack.sh" install
    echo "== compose's LocalStack init hook (localstack-init/ready.d)"
    rm -rf "$run"
    mkdir -p "$run/fs/etc/localstack/init" "$run/tmp"
    ln -s "$root/localstack-init/ready.d" "$run/fs/etc/localstack/init/ready.d"
    (
        cd "$run"
        # OVERRIDE_IN_DOCKER=0: the host layout, so the init folder is under FILESYSTEM_ROOT.
        export OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$run/fs" TMPDIR="$run/tmp" \
            SERVICES=s3,sqs GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
            DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 SQS_ENDPOINT_STRATEGY=path \
            IMGFLOW_BIN="$bin" IMGFLOW_SETUP_ENDPOINT="http://127.0.0.1:$port" \
            IMGFLOW_READY_FILE="$run/ready" \
            IMGFLOW_INBOX=hook-inbox IMGFLOW_OUTBOX=hook-outbox IMGFLOW_QUEUE=hook-jobs
        setsid "$root/.localstack/venv/bin/python" -m localstack.runtime.main > "$run/localstack.log" 2>&1 < /dev/null &
        echo $! > "$run/pid"
    )
    local pid status=""
    pid=$(cat "$run/pid")
    for _ in $(seq 1 120); do
        status=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/_localstack/init/ready" 2>/dev/null || true)
        case "$status" in *'"completed": true'*) break ;; esac
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    case "$status" in
        *'"state": "SUCCESSFUL"'*) ;;
        *) status="" ;;
    esac
    if [ -n "$status" ] && [ -f "$run/ready" ]; then
        echo "  ok   ready.d/10-imgflow-setup.sh ran imgflow setup in LocalStack: $status"
    else
        echo "  FAIL the hook did not succeed ($status); last lines of $run/localstack.log:"
        tail -n 20 "$run/localstack.log"
        failed=1
    fi
}

case "${1:-static}" in
    static) static ;;
    hook) hook ;;
    all) static; hook ;;
    *) echo "usage: $0 [static|hook|all]" >&2; exit 2 ;;
esac
if [ "$failed" != 0 ]; then
    echo "deploy-checks: FAILED" >&2
    exit 1
fi
echo "deploy-checks: all passed"

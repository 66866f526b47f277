#!/usr/bin/env bash
# Issue 18: every autoscaling experiment and the validation, tables on stdout,
# results (Markdown, CSV, PNG) in bench/autoscale/results/. Under a minute.
#   bench/autoscale/run.sh            # all of it
#   bench/autoscale/run.sh --no-charts  # tables only (stdlib Python, no venv)
# The simulator is stdlib-only; the charts use matplotlib from a venv
# (bench/autoscale/.venv, pinned in requirements.txt), created on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/results"
mkdir -p "$out"
start=$(date +%s)
python3 "$here/experiments.py" "$out"
if [[ "${1:-}" != "--no-charts" ]]; then
  if [[ ! -x "$here/.venv/bin/python" ]]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
  fi
  "$here/.venv/bin/python" "$here/charts.py" "$out"
fi
{
  echo "command: bench/autoscale/run.sh"
  echo "commit: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet -- . ':!results' 2>/dev/null || echo ' (uncommitted changes in bench/autoscale)')"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "python: $(python3 --version 2>&1)"
} > "$out/COMMAND.txt"
echo "done in $(( $(date +%s) - start )) s; results in $out"

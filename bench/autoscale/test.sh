#!/usr/bin/env bash
# The simulator's tests (stdlib only): HPA and KEDA rules, conservation.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m unittest discover -v bench/autoscale

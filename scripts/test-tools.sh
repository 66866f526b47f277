#!/usr/bin/env bash
# The independent tools the integration tests compare imgflow with (Pillow
# and LittleCMS, pillow-heif, the AWS CLI, …), in one project-local
# virtualenv from the pinned scripts/test-tools-requirements.txt:
#
#   scripts/test-tools.sh        create or update .test-tools/venv (quiet when current)
#
# Tests find its interpreter as $IMGFLOW_TEST_PYTHON, or at
# .test-tools/venv/bin/python (see tests/it/tools.rs); its bin/ also holds `aws`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.test-tools/venv"
reqs="$root/scripts/test-tools-requirements.txt"
stamp="$venv/.requirements"

if [ -x "$venv/bin/python" ] && cmp -s "$reqs" "$stamp"; then
    exit 0
fi
echo "test-tools: installing $(grep -cv '^\s*\(#\|$\)' "$reqs") packages into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
cp "$reqs" "$stamp"

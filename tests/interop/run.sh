#!/usr/bin/env bash
# Runs the interop suite with the venv tests/install-deps.sh made. Arguments go to pytest, e.g.
#   tests/interop/run.sh -k 'kcat and gzip'
#   STRATA_BIN=/path/to/strata tests/interop/run.sh
#   INTEROP_BROKER=mock tests/interop/run.sh      # the clients against librdkafka's mock broker
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${INTEROP_VENV:-$DIR/.venv}"
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV: run tests/install-deps.sh first" >&2; exit 2; }
cd "$DIR"
exec "$VENV/bin/python" -m pytest "$@"

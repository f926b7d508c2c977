#!/usr/bin/env bash
# Runs the differential tests (every scenario of scenarios.py against Apache Kafka 4.4.0 and
# against Strata, differences checked against KNOWN.md) and Kafka's own tools against both
# brokers, with the venv tests/install-deps.sh made. Arguments go to pytest, e.g.
#   tests/differential/run.sh -k produce              # some scenarios only
#   tests/differential/run.sh test_kafka_tools.py     # the tools only
#   STRATA_BIN=/path/to/strata tests/differential/run.sh
#   TOOLS_BROKERS=strata tests/differential/run.sh    # the tools against Strata only
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${INTEROP_VENV:-$DIR/../interop/.venv}"
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV: run tests/install-deps.sh first" >&2; exit 2; }
[ -f "${KAFKA_DIST:-$DIR/../../target/kafka-dist}/libs/kafka_2.13-4.4.0.jar" ] \
    || { echo "Apache Kafka is not installed: run tests/install-deps.sh (or tests/differential/install-kafka.sh)" >&2; exit 2; }
cd "$DIR"
exec "$VENV/bin/python" -m pytest "$@"

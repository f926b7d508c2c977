#!/usr/bin/env bash
# Transactions against idempotence on one node in one run: `strata bench txn` produces
# 1 KiB records (16 a request, acks=all, one producer, one partition) first idempotently,
# then transactionally committing every 100 ms, each for DURATION, while a read_committed
# consumer measures end-to-end latency; then the broker's CPU for the whole run.
#
#   bash benches/txn.sh                       # release build, DURATION=30s
#   STRATA=path/to/strata DURATION=5s bash benches/txn.sh    # a given build, a short run
#
# Prints the bench's summary (records/s, MB/s, commit latency, read_committed p50/p99 of
# each phase) and the broker CPU seconds. Everything runs against 127.0.0.1 and stops by
# itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

DURATION=${DURATION:-30s}
COMMIT_INTERVAL=${COMMIT_INTERVAL:-100ms}
PORT=${PORT:-19912}
if [ -z "${STRATA:-}" ]; then
  cargo build --release --locked -p strata
  STRATA=target/release/strata
fi
ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-txn-XXXX")
B=127.0.0.1:$PORT
SERVER=
trap '[ -z "$SERVER" ] || kill -9 $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$ROOT"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), data on $(df --output=fstype "$ROOT" | tail -1)"
echo "strata: $STRATA ($(stat -c %y "$STRATA" | cut -d. -f1))"
"$STRATA" serve --data-dir "$ROOT/data" --listen "$B" --voters "1@127.0.0.1:$((PORT + 1))" \
  >"$ROOT/node.log" 2>&1 &
SERVER=$!
"$STRATA" cluster info -b "$B" --wait 30 >/dev/null
before=$(cpu_seconds "$SERVER")
"$STRATA" bench txn -b "$B" --topic txn-bench --duration "$DURATION" \
  --commit-interval "$COMMIT_INTERVAL" --record-size 1024 --batch 16
after=$(cpu_seconds "$SERVER")
echo "broker CPU seconds for both phases: $(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')"

#!/usr/bin/env bash
# Transactions against idempotence on one node, Strata and then Apache Kafka 4.4.0 (KRaft
# combined mode, the jars of tests/differential/install-kafka.sh; KAFKA=0 leaves it out) in
# one run: against each, after a short warm-up run, `strata bench txn` produces 1 KiB records (16 a request,
# acks=all, one producer, one partition) first idempotently, then transactionally committing
# every 100 ms, each for DURATION, while a read_committed consumer measures end-to-end
# latency; then the server's CPU for the whole run.
#
#   bash benches/txn.sh                       # release build, DURATION=30s
#   STRATA=path/to/strata DURATION=5s bash benches/txn.sh    # a given build, a short run
#
# Prints each server's summary (records/s, MB/s, commit latency, read_committed p50/p99 of
# each phase, as JSON), its CPU seconds, the load average before and after, and a Markdown
# table. Everything runs against 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

DURATION=${DURATION:-30s}
COMMIT_INTERVAL=${COMMIT_INTERVAL:-100ms}
PORT=${PORT:-19912}
KAFKA=${KAFKA:-1}
KAFKA_LIBS=${KAFKA_LIBS:-target/kafka-dist/libs}
if [ -z "${STRATA:-}" ]; then
  cargo build --release --locked -p strata
  STRATA=${CARGO_TARGET_DIR:-$PWD/target}/release/strata
fi
if [ "$KAFKA" = 1 ] && [ ! -f "$KAFKA_LIBS/kafka_2.13-4.4.0.jar" ]; then
  KAFKA_DIST=$(dirname "$KAFKA_LIBS") bash tests/differential/install-kafka.sh
fi
bench_dir strata-txn
B=127.0.0.1:$PORT
CONTROLLER_PORT=$((PORT + 1))

machine_line "$ROOT"
load_line
echo "strata: $STRATA ($(stat -c %y "$STRATA" | cut -d. -f1))"

declare -A R
# run NAME: the bench against the server SERVER, which is starting; its figures into R.
run() {
  local name=$1 before after json
  "$STRATA" cluster info -b "$B" --wait 60 >/dev/null
  # A short run first, on another topic and transactional id: the transaction state topic
  # is created and loaded (Kafka's 50 partitions can take longer than the client's 30 s of
  # retries on a busy machine), then the measured run starts.
  for attempt in 1 2 3 4; do
    "$STRATA" bench txn -b "$B" --topic txn-warm-up --transactional-id txn-warm-up \
      --duration 1s --json >/dev/null 2>&1 && break
    [ $attempt -lt 4 ] || { echo "$name: transactions never became available" >&2; exit 1; }
  done
  before=$(cpu_seconds "$SERVER")
  json=$("$STRATA" bench txn -b "$B" --topic txn-bench --duration "$DURATION" \
    --commit-interval "$COMMIT_INTERVAL" --record-size 1024 --batch 16 --json)
  after=$(cpu_seconds "$SERVER")
  echo "$name: $json"
  R[$name,cpu]=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')
  echo "$name: server CPU seconds for both phases: ${R[$name,cpu]}; $(load_line)"
  R[$name,rows]=$(JSON=$json python3 - "$name" "${R[$name,cpu]}" <<'EOF'
import json, os, sys
name, cpu = sys.argv[1], sys.argv[2]
j = json.loads(os.environ["JSON"])
idem, txn = j["idempotent"], j["transactional"]
def e2e(p):
    l = p["read_committed_e2e"]
    return f"{l['p50_ms']:.2f} ms / {l['p99_ms']:.2f} ms"
c = txn["commit_latency"]
print(f"| {name} | idempotent | {idem['records_per_sec']:,.0f} | {idem['mb_per_sec']:.1f} | – | {e2e(idem)} | {cpu} |")
print(f"| {name} | transactional | {txn['records_per_sec']:,.0f} | {txn['mb_per_sec']:.1f} | "
      f"{c['p50_ms']:.2f} ms / {c['p99_ms']:.2f} ms ({txn['commits']} commits) | {e2e(txn)} | |")
print(f"| {name} | transactional / idempotent | {txn['records_per_sec'] / idem['records_per_sec']:.2f} | | | | |")
EOF
)
}

"$STRATA" serve --data-dir "$ROOT/strata" --listen "$B" --voters "1@127.0.0.1:$CONTROLLER_PORT" \
  >"$ROOT/strata.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
run strata
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
SERVERS=(strata)
if [ "$KAFKA" = 1 ]; then
  kafka_config "$ROOT/kafka" "$CONTROLLER_PORT" "PLAINTEXT://$B" "PLAINTEXT://$B" PLAINTEXT:PLAINTEXT
  kafka_start "$ROOT/kafka"
  SERVER=$KAFKA_PID
  PIDS+=("$SERVER")
  run kafka
  SERVERS+=(kafka)
fi
echo
echo "| server | phase | records/s | MB/s | commit latency p50 / p99 | read_committed end-to-end p50 / p99 | server CPU s, both phases |"
echo "|---|---|---|---|---|---|---|"
for name in "${SERVERS[@]}"; do echo "${R[$name,rows]}"; done

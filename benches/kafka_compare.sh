#!/usr/bin/env bash
# Strata beside Apache Kafka 4.4.0 on this machine, in one run: the same loads against a
# single Strata node and a single Kafka node (KRaft combined mode, the jars the test suite
# installs from Maven Central into target/kafka-dist/libs), one after the other, each with the
# machine to itself. Prints one line per measurement and a Markdown table for RESULTS.md.
#
#   bash tests/install-deps.sh          # once: Java 17, Maven and Kafka's jars
#   bash benches/kafka_compare.sh       # RECORDS=1000000 by default
#
# Loads (1 KiB records, one partition, acks=1 unless said):
#   * librdkafka producer and consumer (strata-loadgen, the rdkafka crate): records/s;
#   * `strata bench produce|consume|e2e` (Strata's own client): records/s, e2e p50/p99;
#   * start time (process start to the first answered Metadata), resident memory after the
#     loads (Strata's includes the mapped segment pages it read), and recovery after kill -9 (restart to the first answered Metadata, with the
#     records written).
# Everything runs against 127.0.0.1 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

RECORDS=${RECORDS:-1000000}
E2E_RATE=${E2E_RATE:-5000}
LIBS=target/kafka-dist/libs
KAFKA_LIBS=$LIBS
[ -f "$LIBS/kafka_2.13-4.4.0.jar" ] || bash tests/differential/install-kafka.sh
cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
STRATA=target/release/strata
LOADGEN=target/release/strata-loadgen
ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/kafka-compare-XXXX")
PORT=19792
CONTROLLER_PORT=19793
B=127.0.0.1:$PORT
SERVER=
trap '[ -z "$SERVER" ] || kill -9 $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$ROOT"' EXIT

now_ms() { date +%s%3N; }

# wait_serving STARTED_MS: until a Metadata request is answered; prints the ms it took.
wait_serving() {
  local started=$1
  for _ in $(seq 1 600); do
    if $STRATA -b "$B" cluster info >/dev/null 2>&1; then
      echo $(($(now_ms) - started))
      return
    fi
    sleep 0.05
  done
  echo "server did not answer within 30s" >&2
  exit 1
}

rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# Each start sets SERVER (the pid) and START_MS (from process start to serving).
start_strata() {
  local started
  started=$(now_ms)
  $STRATA serve --data-dir "$ROOT/strata" --listen "$B" --voters "1@127.0.0.1:$CONTROLLER_PORT" \
    >>"$ROOT/strata.log" 2>&1 &
  SERVER=$!
  START_MS=$(wait_serving "$started")
}

kafka_config_compare() {
  kafka_config "$ROOT/kafka" "$CONTROLLER_PORT" "PLAINTEXT://$B" "PLAINTEXT://$B" PLAINTEXT:PLAINTEXT
}

start_kafka() {
  local started
  started=$(now_ms)
  kafka_start "$ROOT/kafka"
  SERVER=$KAFKA_PID
  START_MS=$(wait_serving "$started")
}

stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
kill9() { kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
json_field() { python3 -c "import json,sys; print(round(json.loads(sys.stdin.read())$1, 2))" <<<"$2"; }

declare -A R
# measure NAME START_FN: the loads against a fresh server, then kill -9 and a restart.
measure() {
  local name=$1 start_fn=$2 line
  $start_fn
  R[$name,start]=$START_MS
  $STRATA -b "$B" topic create bench -p 1 >/dev/null
  line=$($LOADGEN -b "$B" -t bench -p 1 produce --size 1024 --count "$RECORDS" --acks 1)
  R[$name,rdk_produce]=$(field 'records\/s' "$line")
  line=$($LOADGEN -b "$B" -t bench -p 1 consume --count "$RECORDS")
  R[$name,rdk_consume]=$(field 'records\/s' "$line")
  line=$($STRATA bench -b "$B" produce -t sbench -n "$RECORDS" -s 1024 -p 1 --acks 1 --json -d 120)
  R[$name,s_produce]=$(json_field "['records_per_sec']" "$line")
  line=$($STRATA bench -b "$B" consume -t sbench -n "$RECORDS" --json -d 120)
  R[$name,s_consume]=$(json_field "['records_per_sec']" "$line")
  line=$($STRATA bench -b "$B" e2e -t e2e --rate "$E2E_RATE" -d 10 --json)
  R[$name,e2e_p50]=$(json_field "['latency']['p50_ms']" "$line")
  R[$name,e2e_p99]=$(json_field "['latency']['p99_ms']" "$line")
  R[$name,rss]=$(rss_mb "$SERVER")
  kill9
  $start_fn
  R[$name,recovery]=$START_MS
  stop
}

machine_line "$ROOT"
echo "java: $(java -version 2>&1 | head -1)"
loopback_limit $((PORT + 2))
dd if=/dev/zero of="$ROOT/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/{print "disk, 1 GiB dd with fdatasync: " $(NF-1) " " $NF}'
rm -f "$ROOT/dd"
measure strata start_strata
kafka_config_compare
measure kafka start_kafka

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a ~ /^[0-9.]+$/) printf "%.2f", a / b; else print "-" }'; }
echo
echo "| measure | Strata | Kafka 4.4.0 | Strata / Kafka |"
echo "|---|---|---|---|"
row() { echo "| $1 | ${R[strata,$2]} | ${R[kafka,$2]} | $(ratio "${R[strata,$2]}" "${R[kafka,$2]}") |"; }
row "produce, librdkafka, records/s" rdk_produce
row "consume, librdkafka, records/s" rdk_consume
row "produce, strata bench, records/s" s_produce
row "consume, strata bench, records/s" s_consume
row "end-to-end p50 at $E2E_RATE/s, ms" e2e_p50
row "end-to-end p99 at $E2E_RATE/s, ms" e2e_p99
row "resident memory after the loads, MiB" rss
row "start to first Metadata answer, ms" start
row "restart after kill -9 to first Metadata answer, ms" recovery

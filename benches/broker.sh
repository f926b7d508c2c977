#!/usr/bin/env bash
# Broker throughput, latency, CPU cost and group commit on this machine, with the loopback and
# disk limits measured in the same run. Starts release `strata serve` nodes on 127.0.0.1, drives
# them with strata-loadgen (librdkafka through the rdkafka crate), and prints one line per
# measurement.
#
#   bash benches/broker.sh     # 1 KiB records: acks=1 to 1 and 8 partitions, consume, latency
#                              # at half the single-partition rate, durable (flush.messages=1)
#                              # produce from 8 producers on one partition
#   RATES="25000 100000" bash benches/broker.sh   # latency at these rates too
#
# Everything runs against 127.0.0.1 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

RECORDS=${RECORDS:-2000000}
DURABLE_RECORDS=${DURABLE_RECORDS:-400000}
PORT=${PORT:-19892}

cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
# STRATA=path/to/another/strata measures another build with the same load.
STRATA=${STRATA:-target/release/strata}
LOADGEN=target/release/strata-loadgen
# DATA_ROOT=/dev/shm takes the disk out of the measurement (page-cache writeback throttling).
ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-bench-XXXX")
B=127.0.0.1:$PORT
SERVER=
trap '[ -z "$SERVER" ] || kill -9 $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$ROOT"' EXIT

# start NAME: a fresh node with its data and log under $ROOT/NAME; its pid in SERVER.
start() {
  $STRATA serve --data-dir "$ROOT/$1" --listen "$B" >"$ROOT/$1.log" 2>&1 &
  SERVER=$!
  sleep 0.5
}
# stop: SIGTERM (the broker logs its request-time summary), and wait.
stop() {
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}

machine_line "$ROOT"
loopback_limit $((PORT + 1))
dd if=/dev/zero of="$ROOT/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/{print "disk, 1 GiB dd with fdatasync: " $(NF-1) " " $NF}'
rm -f "$ROOT/dd"

# Throughput, and the broker's CPU per GB produced and consumed.
start throughput
MAX_RATE=
for partitions in 1 8; do
  topic=bench-p$partitions
  $STRATA topic create -b $B $topic -p $partitions >/dev/null
  before=$(cpu_seconds "$SERVER")
  line=$($LOADGEN -b $B -t $topic -p $partitions produce --size 1024 --count "$RECORDS" --acks 1)
  after=$(cpu_seconds "$SERVER")
  echo "$line broker_cpu_s_per_GB=$(per_gb "$before" "$after" "$RECORDS" 1024)"
  [ -n "$MAX_RATE" ] || MAX_RATE=$(sed -n 's/.* records\/s=\([0-9]*\).*/\1/p' <<<"$line")
  before=$(cpu_seconds "$SERVER")
  line=$($LOADGEN -b $B -t $topic -p $partitions consume --count "$RECORDS")
  after=$(cpu_seconds "$SERVER")
  echo "$line broker_cpu_s_per_GB=$(per_gb "$before" "$after" "$RECORDS" 1024)"
done
stop

# Latency at a fixed rate: half the single-partition maximum just measured (or RATE), on a
# fresh node so its request-time summary covers this run alone.
for rate in ${RATES:-} "${RATE:-$((MAX_RATE / 2))}"; do
  start latency-$rate
  $STRATA topic create -b $B bench-latency -p 1 >/dev/null
  $LOADGEN -b $B -t bench-latency -p 1 latency --size 1024 --rate "$rate" --seconds 10 --acks 1
  stop
  echo "broker-side Produce: $(request_times "$ROOT/latency-$rate.log" Produce)"
done

# Durability: 8 producers on one partition, acknowledged after the write (flush.messages
# unset) and after fsync (flush.messages=1: group commit). fdatasync calls are counted by
# perf on the syscall tracepoint.
start durable
for mode in page-cache fsync; do
  config=()
  [ "$mode" = fsync ] && config=(-c flush.messages=1)
  $STRATA topic create -b $B durable-$mode -p 1 "${config[@]}" >/dev/null
  perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -x, -o "$ROOT/perf-$mode" \
    -p "$SERVER" 2>/dev/null &
  perf=$!
  sleep 0.5
  started=$(date +%s.%N)
  line=$($LOADGEN -b $B -t durable-$mode -p 1 produce --size 1024 --count "$DURABLE_RECORDS" --acks 1 --producers 8)
  elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
  kill -INT $perf
  wait $perf 2>/dev/null || true
  syncs=$(awk -F, '/sys_enter_f/ { n += $1 } END { print n + 0 }' "$ROOT/perf-$mode")
  echo "durable $mode: $line syncs=$syncs syncs/s=$(awk -v n="$syncs" -v t="$elapsed" 'BEGIN { printf "%.0f", n / t }') records/sync=$(awk -v n="$DURABLE_RECORDS" -v s="$syncs" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }')"
done
stop

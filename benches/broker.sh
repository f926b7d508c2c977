#!/usr/bin/env bash
# Broker throughput and latency on this machine, with the loopback limit measured in the same
# run. Starts one release `strata serve` on 127.0.0.1, drives it with strata-loadgen
# (librdkafka through the rdkafka crate), and prints one line per measurement.
#
#   bash benches/broker.sh            # 1 KiB records; 1 and 8 partitions; acks=1
#
# Everything runs against 127.0.0.1 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-2000000}
PORT=${PORT:-19892}
command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null

cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
STRATA=target/release/strata
LOADGEN=target/release/strata-loadgen
# DATA_ROOT=/dev/shm takes the disk out of the measurement (page-cache writeback throttling).
DATA=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-bench-XXXX")
B=127.0.0.1:$PORT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB, data on $(df --output=fstype "$DATA" | tail -1)"

iperf3 -s -1 -p $((PORT + 1)) >/dev/null 2>&1 &
sleep 0.5
iperf3 -c 127.0.0.1 -p $((PORT + 1)) -t 5 -f g | awk '/sender/{print "iperf3 loopback, 1 stream: " $7 " " $8}'

$STRATA serve --data-dir "$DATA" --listen "$B" >"$DATA.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
sleep 0.5

MAX_RATE=
for partitions in 1 8; do
  topic=bench-p$partitions
  $STRATA topic create -b $B $topic -p $partitions >/dev/null
  line=$($LOADGEN -b $B -t $topic -p $partitions produce --size 1024 --count "$RECORDS" --acks 1)
  echo "$line"
  [ -n "$MAX_RATE" ] || MAX_RATE=$(sed -n 's/.* records\/s=\([0-9]*\).*/\1/p' <<<"$line")
  $LOADGEN -b $B -t $topic -p $partitions consume --count "$RECORDS"
done

# Latency at a fixed rate: half the single-partition maximum just measured (or RATE).
RATE=${RATE:-$((MAX_RATE / 2))}
$STRATA topic create -b $B bench-latency -p 1 >/dev/null
$LOADGEN -b $B -t bench-latency -p 1 latency --size 1024 --rate "$RATE" --seconds 10 --acks 1

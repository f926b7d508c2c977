#!/usr/bin/env bash
# The metadata quorum on this machine: three release `strata serve` nodes on 127.0.0.1-3
# (each broker and voter). Measures CreateTopics commit latency and rate through the Kafka
# protocol, with the disk's fdatasync latency (the floor of a durable commit) measured in
# the same run, then the time from kill -9 of the Raft leader to a new leader answering,
# three times. Then the criterion bench of opening a 100,000-partition image.
#
#   bash benches/metadata.sh
#
# Everything runs against 127.0.0.x and stops by itself (counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

COUNT=${COUNT:-2000}
cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-metabench
STRATA=target/release/strata
BENCH=target/release/strata-metabench
DATA=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-meta-XXXX")
VOTERS=1@127.0.0.1:19393,2@127.0.0.2:19393,3@127.0.0.3:19393
declare -A PIDS

machine_line "$DATA"
if command -v fio >/dev/null; then
  fio --name=fdatasync --directory="$DATA" --rw=write --bs=4k --size=8m --fdatasync=1 \
    --output-format=json 2>/dev/null | python3 -c '
import json, sys
job = json.load(sys.stdin)["jobs"][0]
sync = job["sync"]["lat_ns"]
print("fio 4 KiB write+fdatasync: %.0f IOPS; fdatasync p50 %.2f ms, p99 %.2f ms" % (
    job["write"]["iops"], sync["percentile"]["50.000000"] / 1e6, sync["percentile"]["99.000000"] / 1e6))'
  rm -f "$DATA"/fdatasync*
fi

start() {
  local i=$1
  $STRATA serve --node-id "$i" --data-dir "$DATA/n$i" --listen "127.0.0.$i:19392" \
    --voters $VOTERS >>"$DATA/n$i.log" 2>&1 &
  PIDS[$i]=$!
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
for i in 1 2 3; do start "$i"; done
B=127.0.0.1:19392,127.0.0.2:19392,127.0.0.3:19392
for _ in $(seq 100); do
  [ "$($STRATA cluster info -b 127.0.0.1:19392 2>/dev/null | grep -c '^[123] ')" = 3 ] && break
  sleep 0.1
done

$BENCH commits -b "$B" --count "$COUNT" --concurrency 1 --prefix seq
$BENCH commits -b "$B" --count "$COUNT" --concurrency 32 --prefix par
$BENCH alters -b "$B" --count "$COUNT" --concurrency 1
$BENCH alters -b "$B" --count "$COUNT" --concurrency 32

for round in 1 2 3; do
  leader=$($STRATA cluster quorum -b 127.0.0.1:19392 | awk '/^LEADER/{print $2}')
  survivor=$(( leader % 3 + 1 ))
  since=$(date +%s%N)
  kill -9 "${PIDS[$leader]}"
  echo -n "round $round: killed leader $leader; "
  $BENCH wait-leader -b "127.0.0.$survivor:19392" --old "$leader" --since-ns "$since"
  start "$leader"
  sleep 3
done

cargo bench -p strata-benches --bench metadata_image 2>&1 | grep -E "snapshot of|time:" || true

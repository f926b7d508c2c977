#!/usr/bin/env bash
# Restart after kill -9 with many partitions: one `strata serve` node on 127.0.0.1 gets
# TOPICS topics of PARTITIONS partitions each (10 x 1,000 by default), data in every
# partition of the first topic (1,000), then kill -9 and a restart. Prints the time from the
# restart to the broker answering Metadata with a leader for every partition, and the
# node's open descriptors and mappings under its data directory (/proc/PID/fd and maps)
# before the kill and after the restart.
#
#   bash benches/recovery.sh                          # release build
#   STRATA=target/debug/strata bash benches/recovery.sh
#   TOPICS=2 PARTITIONS=500 bash benches/recovery.sh
#
# Runs against 127.0.0.1 and stops by itself (fixed counts, LIMIT seconds per wait).
set -euo pipefail
cd "$(dirname "$0")/.."

TOPICS=${TOPICS:-10}
PARTITIONS=${PARTITIONS:-1000}
RECORDS=${RECORDS:-20000}
LIMIT=${LIMIT:-120}
PORT=${PORT:-19792}
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kcat)"; exit 1; }
if [ -z "${STRATA:-}" ]; then
  cargo build --release --locked -p strata --bin strata
  STRATA=target/release/strata
fi
ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-recovery-XXXX")
B=127.0.0.1:$PORT
SERVER=
trap '[ -z "$SERVER" ] || kill -9 $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$ROOT"' EXIT

start() {
  $STRATA serve --data-dir "$ROOT/data" --listen "$B" --voters "1@127.0.0.1:$((PORT + 1))" \
    >>"$ROOT/node.log" 2>&1 &
  SERVER=$!
}
# led: partitions Metadata reports with a leader, over every topic.
led() {
  kcat -b "$B" -L -m 5 2>/dev/null | grep -c 'partition .*leader [0-9]' || true
}
# wait_led N: waits until N partitions have a leader; prints the seconds it took.
wait_led() {
  local want=$1 t0 n
  t0=$(date +%s.%N)
  while :; do
    n=$(led)
    [ "$n" -ge "$want" ] && break
    if awk -v a="$t0" -v b="$(date +%s.%N)" -v l="$LIMIT" 'BEGIN { exit !(b - a > l) }'; then
      echo "only $n of $want partitions led after ${LIMIT}s" >&2
      tail -5 "$ROOT/node.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}
# usage LABEL: descriptors and mappings of the node under its data directory.
usage() {
  local fds maps
  fds=$(find "/proc/$SERVER/fd" -lname "$ROOT/data/*" 2>/dev/null | wc -l)
  maps=$(grep -c "$ROOT/data/" "/proc/$SERVER/maps" || true)
  echo "$1: $fds open files and $maps mappings under the data directory (all descriptors: $(ls "/proc/$SERVER/fd" | wc -l))"
}

echo "machine: $(nproc) cores, ulimit -Sn $(ulimit -Sn), -Hn $(ulimit -Hn), vm.max_map_count $(cat /proc/sys/vm/max_map_count), data on $(df --output=fstype "$ROOT" | tail -1)"
start
for _ in $(seq 100); do $STRATA cluster info -b "$B" >/dev/null 2>&1 && break; sleep 0.1; done
t0=$(date +%s.%N)
for t in $(seq 0 $((TOPICS - 1))); do
  $STRATA topic create -b "$B" "recovery-$t" -p "$PARTITIONS" >/dev/null
done
total=$((TOPICS * PARTITIONS))
# __consumer_offsets does not exist yet: every led partition is ours.
wait_led "$total" >/dev/null
echo "created $total partitions in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
seq 1 "$RECORDS" | sed 's/.*/key-&:value-&/' | $STRATA produce -b "$B" -K : recovery-0 >/dev/null
with_data=$(find "$ROOT/data" -path '*/recovery-0-*' -name '*.log' -size +0 | wc -l)
echo "produced $RECORDS records to recovery-0: $with_data partitions hold data"
usage "before kill -9"
sed "s/\x1b\[[0-9;]*m//g" "$ROOT/node.log" | grep -m1 "resource budget" | sed "s/.*resource budget/budget:/" || true

kill -9 "$SERVER"
wait "$SERVER" 2>/dev/null || true
start
secs=$(wait_led "$total")
echo "restart after kill -9: Metadata answers a leader for all $total partitions after $secs s"
usage "after restart"
count=$(kcat -b "$B" -C -t recovery-0 -e -q -f '%o\n' 2>/dev/null | wc -l)
echo "read back $count of $RECORDS records from recovery-0"
[ "$count" -eq "$RECORDS" ] || { echo "records missing" >&2; exit 1; }
echo "node log of the restart:"
sed 's/\x1b\[[0-9;]*m//g' "$ROOT/node.log" | grep -E "opened log directory|strata is serving|serving clients" | tail -3 | cut -c1-200

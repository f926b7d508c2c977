#!/usr/bin/env bash
# Replication cost and failover time on this machine: one release `strata serve` as the
# single-node baseline, then three nodes on 127.0.0.1-3 with a replication factor 3 topic
# (min.insync.replicas=2), driven by strata-loadgen (librdkafka). The loopback and disk
# limits are measured in the same run. Prints one line per measurement.
#
#   bash benches/replication.sh
#
# Everything targets 127.0.0.0/8 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

RECORDS=${RECORDS:-1000000}
PARTITIONS=${PARTITIONS:-8}
FAILOVERS=${FAILOVERS:-3}
BASE=${BASE:-19500}

cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
STRATA=$PWD/target/release/strata
LOADGEN=$PWD/target/release/strata-loadgen
bench_dir strata-repl

machine_line "$ROOT"
loopback_limit $((BASE + 99))
dd if=/dev/zero of="$ROOT/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/{print "disk, 1 GiB dd with fdatasync: " $(NF-1) " " $NF}'
rm -f "$ROOT/dd"

VOTERS="1@127.0.0.1:$((BASE + 11)),2@127.0.0.2:$((BASE + 12)),3@127.0.0.3:$((BASE + 13))"
# start_node ID [VOTERS]: starts node ID on 127.0.0.ID:$BASE; its pid is in NODE_PID[ID].
declare -A NODE_PID
start_node() {
  local id=$1 voters=${2:-$VOTERS}
  $STRATA serve --node-id "$id" --data-dir "$ROOT/n$id" --listen "127.0.0.$id:$BASE" \
    --voters "$voters" >>"$ROOT/n$id.log" 2>&1 &
  NODE_PID[$id]=$!
  PIDS+=($!)
}

# The leader of partition 0 of $1, from `strata topic describe`.
leader_of() {
  $STRATA topic describe -b "$2" "$1" 2>/dev/null | awk '$1 == "0" {print $2; exit}'
}

measure() { # label bootstrap topic pid... (the brokers whose CPU is counted)
  local label=$1 b=$2 topic=$3 before line
  shift 3
  for acks in 1 all; do
    before=$(cpu_seconds "$@")
    line=$($LOADGEN -b "$b" -t "$topic" -p "$PARTITIONS" produce --size 1024 --count "$RECORDS" --acks $acks)
    echo "$label $line brokers_cpu_s_per_GB=$(per_gb "$before" "$(cpu_seconds "$@")" "$RECORDS" 1024)"
  done
  for acks in 1 all; do
    echo "$label $($LOADGEN -b "$b" -t "$topic-lat" -p 1 latency --size 1024 --rate 5000 --seconds 10 --acks $acks)"
  done
}

# Single node: the baseline.
start_node 1 "1@127.0.0.1:$((BASE + 11))"
sleep 1
B=127.0.0.1:$BASE
$STRATA topic create -b $B single -p "$PARTITIONS" >/dev/null
$STRATA topic create -b $B single-lat -p 1 >/dev/null
measure "single-node" $B single "${NODE_PID[1]}"
kill "${NODE_PID[1]}"; wait "${NODE_PID[1]}" 2>/dev/null || true
rm -rf "$ROOT/n1" "$ROOT"/n1.log

# Three nodes, replication factor 3.
for id in 1 2 3; do start_node $id; done
sleep 2
B=127.0.0.1:$BASE,127.0.0.2:$BASE,127.0.0.3:$BASE
$STRATA topic create -b $B rf3 -p "$PARTITIONS" -r 3 -c min.insync.replicas=2 >/dev/null
$STRATA topic create -b $B rf3-lat -p 1 -r 3 -c min.insync.replicas=2 >/dev/null
sleep 1
measure "3-nodes-rf3" $B rf3 "${NODE_PID[1]}" "${NODE_PID[2]}" "${NODE_PID[3]}"

# Failover: a probe producer acks=all every 10 ms while the leader of its partition is
# killed with -9 after 4 s; the longest wait between two acknowledgements is the failover
# time a producer sees (kill, lease expiry, election, metadata refresh, retry).
$STRATA topic create -b $B probe -p 1 -r 3 -c min.insync.replicas=2 >/dev/null
sleep 1
for round in $(seq 1 "$FAILOVERS"); do
  leader=$(leader_of probe $B)
  $LOADGEN -b $B -t probe probe --seconds 12 --interval-ms 10 >"$ROOT/probe.out" &
  probe=$!
  sleep 4
  kill -9 "${NODE_PID[$leader]}"
  wait "$probe"
  echo "failover round $round: killed leader $leader; $(cat "$ROOT/probe.out")"
  start_node "$leader"
  sleep 5
done

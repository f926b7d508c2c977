#!/usr/bin/env bash
# The cost of Produce's record check: the same produce load (librdkafka through
# strata-loadgen, 1 KiB records, acks=1, one partition) against two builds of strata, with
# and without compression, alternating builds so machine noise falls on both alike.
#
#   BEFORE=path/to/old/strata bash benches/produce_check.sh        # AFTER: target/release/strata
#   CODECS="none lz4 zstd" ROUNDS=3 BEFORE=... bash benches/produce_check.sh
#
# Prints one line per run: build, codec, the loadgen line and the broker's CPU per GB of
# record payload. Everything runs against 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

: "${BEFORE:?BEFORE=path to the strata build to compare against}"
RECORDS=${RECORDS:-1000000}
ROUNDS=${ROUNDS:-2}
CODECS=${CODECS:-none lz4}
PORT=${PORT:-19902}
cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
AFTER=${AFTER:-target/release/strata}
LOADGEN=target/release/strata-loadgen
ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/strata-check-XXXX")
B=127.0.0.1:$PORT
SERVER=
trap '[ -z "$SERVER" ] || kill -9 $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$ROOT"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), data on $(df --output=fstype "$ROOT" | tail -1)"
echo "before: $BEFORE ($(stat -c %y "$BEFORE" | cut -d. -f1)); after: $AFTER"
for round in $(seq "$ROUNDS"); do
  for build in before after; do
    bin=$BEFORE
    [ "$build" = after ] && bin=$AFTER
    dir="$ROOT/$build-$round"
    "$bin" serve --data-dir "$dir" --listen "$B" >"$dir.log" 2>&1 &
    SERVER=$!
    sleep 0.5
    for codec in $CODECS; do
      "$bin" topic create -b $B "check-$codec" -p 1 >/dev/null
      before=$(cpu_seconds "$SERVER")
      line=$($LOADGEN -b $B -t "check-$codec" -p 1 --compression "$codec" produce --size 1024 --count "$RECORDS" --acks 1)
      after=$(cpu_seconds "$SERVER")
      echo "round=$round build=$build codec=$codec $line broker_cpu_s_per_GB=$(per_gb "$before" "$after" "$RECORDS" 1024)"
    done
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    rm -rf "$dir"
  done
done

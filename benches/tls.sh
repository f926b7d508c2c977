#!/usr/bin/env bash
# TLS cost: one release `strata serve` with a PLAINTEXT and an SSL listener on the same node,
# and strata-loadgen (librdkafka, OpenSSL on the client side) producing and consuming 1 KiB
# records on one partition through each, alternately, ROUNDS times. The loopback limit and
# `openssl speed` for the cipher TLS 1.3 picks here are measured in the same run. Prints one
# line per measurement and the TLS/plaintext ratios of the medians.
#
#   bash benches/tls.sh
#
# Everything targets 127.0.0.1 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

RECORDS=${RECORDS:-1000000}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-19600}

cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
STRATA=$PWD/target/release/strata
LOADGEN=$PWD/target/release/strata-loadgen
bench_dir strata-tls

machine_line "$ROOT"
loopback_limit $((BASE + 99))
openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2 2>/dev/null |
  awk '/^AES-256-GCM/{printf "openssl speed aes-256-gcm, 16 KiB blocks, 1 core: %.0f MB/s\n", $2 / 1000}'

# A CA and a certificate for 127.0.0.1 (the README's commands).
(
  cd "$ROOT"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=Bench CA" -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
  openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile broker.ext -out broker.crt 2>/dev/null
  cat broker.key broker.crt >broker.pem
)
PLAIN=127.0.0.1:$BASE
TLS=127.0.0.1:$((BASE + 1))
cat >"$ROOT/server.properties" <<EOF
listeners=PLAINTEXT://$PLAIN,SSL://$TLS
advertised.listeners=PLAINTEXT://$PLAIN,SSL://$TLS
ssl.keystore.type=PEM
ssl.keystore.location=$ROOT/broker.pem
log.dirs=$ROOT/data
EOF
$STRATA serve --config "$ROOT/server.properties" --voters "1@127.0.0.1:$((BASE + 11))" \
  >"$ROOT/strata.log" 2>&1 &
PIDS+=($!)
STRATA_PID=$!
sleep 1
$STRATA topic create -b $PLAIN tls-bench -p 1 >/dev/null

TLS_CLIENT=(-X security.protocol=SSL -X "ssl.ca.location=$ROOT/ca.pem")
# rate LINE: the records/s figure of a strata-loadgen line.
rate() { sed -n 's/.* records\/s=\([0-9.]*\).*/\1/p' <<<"$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A RATES
for round in $(seq 1 "$ROUNDS"); do
  for mode in plaintext tls; do
    if [ $mode = tls ]; then b=$TLS extra=("${TLS_CLIENT[@]}"); else b=$PLAIN extra=(); fi
    # Each round writes its own topic so every consume reads exactly RECORDS records.
    topic=tls-bench-$mode-$round
    $STRATA topic create -b $PLAIN "$topic" -p 1 >/dev/null
    before=$(cpu_seconds $STRATA_PID)
    line=$($LOADGEN -b $b "${extra[@]}" -t "$topic" -p 1 produce --size 1024 --count "$RECORDS" --acks 1)
    echo "round $round $mode produce: $line broker_cpu_s_per_GB=$(per_gb "$before" "$(cpu_seconds $STRATA_PID)" "$RECORDS" 1024)"
    RATES[$mode-produce]+="$(rate "$line") "
    before=$(cpu_seconds $STRATA_PID)
    line=$($LOADGEN -b $b "${extra[@]}" -t "$topic" -p 1 consume --count "$RECORDS")
    echo "round $round $mode consume: $line broker_cpu_s_per_GB=$(per_gb "$before" "$(cpu_seconds $STRATA_PID)" "$RECORDS" 1024)"
    RATES[$mode-consume]+="$(rate "$line") "
  done
done
for what in produce consume; do
  p=$(tr ' ' '\n' <<<"${RATES[plaintext-$what]}" | grep . | median)
  t=$(tr ' ' '\n' <<<"${RATES[tls-$what]}" | grep . | median)
  awk -v w="$what" -v p="$p" -v t="$t" \
    'BEGIN { printf "%s median records/s: plaintext %.0f, TLS %.0f, TLS/plaintext %.2f\n", w, p, t, t / p }'
done

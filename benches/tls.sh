#!/usr/bin/env bash
# TLS cost, in one run: servers with a PLAINTEXT and an SSL listener each, running side by
# side on their own ports, driven through both listeners by two clients: strata-loadgen
# (librdkafka, OpenSSL) and `strata bench` (Strata's own client, rustls). The servers: this
# build of Strata, optionally a second Strata build (STRATA_BASELINE, e.g. the commit before a
# change), and Apache Kafka 4.4.0 (KRaft combined mode, the jars of
# tests/differential/install-kafka.sh; KAFKA=0 leaves it out). Each round drives each server
# in turn: per client and listener, RECORDS records of 1 KiB produced (acks=1, one partition,
# one producer) to a fresh topic and consumed, then the topic deleted. The loopback limit,
# `openssl speed` for the AES-GCM ciphers TLS 1.3 uses, the cipher each server negotiates and
# the load average (the machine may be shared) are measured in the same run. Prints one line
# per measurement (with the server's CPU seconds per GB) and a Markdown table of the medians
# and SSL/PLAINTEXT ratios.
#
#   bash benches/tls.sh                                 # RECORDS=1000000 ROUNDS=3
#   STRATA_BASELINE=/path/to/old/strata bash benches/tls.sh
#
# Everything targets 127.0.0.1 and stops by itself (record counts and time limits).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

RECORDS=${RECORDS:-1000000}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-19600}
KAFKA=${KAFKA:-1}
KAFKA_LIBS=${KAFKA_LIBS:-target/kafka-dist/libs}

cargo build --release --locked -p strata -p strata-benches --bin strata --bin strata-loadgen
STRATA=${CARGO_TARGET_DIR:-$PWD/target}/release/strata
LOADGEN=${CARGO_TARGET_DIR:-$PWD/target}/release/strata-loadgen
if [ "$KAFKA" = 1 ] && [ ! -f "$KAFKA_LIBS/kafka_2.13-4.4.0.jar" ]; then
  KAFKA_DIST=$(dirname "$KAFKA_LIBS") bash tests/differential/install-kafka.sh
fi
bench_dir strata-tls

machine_line "$ROOT"
load_line
echo "librdkafka: $(grep -A1 '^name = "rdkafka-sys"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
[ "$KAFKA" = 1 ] && echo "java: $(java -version 2>&1 | head -1)"
loopback_limit $((BASE + 99))
for cipher in aes-128-gcm aes-256-gcm; do
  openssl speed -evp $cipher -bytes 16384 -seconds 2 2>/dev/null |
    awk -v c=$cipher 'toupper($1) == toupper(c) {printf "openssl speed %s, 16 KiB blocks, 1 core: %.0f MB/s\n", c, $2 / 1000}'
done

# A CA and a certificate for 127.0.0.1 (the README's commands); the key is PKCS#8, which
# Kafka's PEM keystore also reads.
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
printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n' \
  "$ROOT/ca.pem" >"$ROOT/client-ssl.properties"
TLS_LOADGEN=(-X security.protocol=SSL -X "ssl.ca.location=$ROOT/ca.pem")
TLS_BENCH=(--command-config "$ROOT/client-ssl.properties")

# The servers run side by side, each on its own ports, and take turns: every round drives
# each of them in turn, so a change in the machine's load reaches all of them alike.
declare -A PLAIN_OF TLS_OF PID_OF
SERVERS=()
# add_server NAME: ports for the next server; sets PLAIN, TLS and CONTROLLER.
add_server() {
  local base=$((BASE + 20 * ${#SERVERS[@]}))
  PLAIN=127.0.0.1:$base TLS=127.0.0.1:$((base + 1)) CONTROLLER=127.0.0.1:$((base + 11))
  PLAIN_OF[$1]=$PLAIN TLS_OF[$1]=$TLS
  SERVERS+=("$1")
}
# use_server NAME: sets PLAIN, TLS and SERVER (its pid).
use_server() { PLAIN=${PLAIN_OF[$1]} TLS=${TLS_OF[$1]} SERVER=${PID_OF[$1]}; }
wait_serving() {
  for _ in $(seq 1 1200); do
    $STRATA -b "$PLAIN" cluster info >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "server did not answer within 60s" >&2
  exit 1
}
start_strata() { # BINARY NAME
  add_server "$2"
  mkdir -p "$ROOT/$2"
  cat >"$ROOT/$2/server.properties" <<EOF
listeners=PLAINTEXT://$PLAIN,SSL://$TLS
advertised.listeners=PLAINTEXT://$PLAIN,SSL://$TLS
ssl.keystore.type=PEM
ssl.keystore.location=$ROOT/broker.pem
log.dirs=$ROOT/$2/data
EOF
  "$1" serve --config "$ROOT/$2/server.properties" --voters "1@$CONTROLLER" \
    >"$ROOT/$2/strata.log" 2>&1 &
  PID_OF[$2]=$!
  PIDS+=("$!")
  wait_serving
}
start_kafka() { # NAME
  add_server "$1"
  kafka_config "$ROOT/$1" "${CONTROLLER#*:}" "PLAINTEXT://$PLAIN,SSL://$TLS" \
    "PLAINTEXT://$PLAIN,SSL://$TLS" "PLAINTEXT:PLAINTEXT,SSL:SSL" \
    "ssl.keystore.type=PEM
ssl.keystore.location=$ROOT/broker.pem
log.segment.delete.delay.ms=0"
  kafka_start "$ROOT/$1"
  PID_OF[$1]=$KAFKA_PID
  PIDS+=("$KAFKA_PID")
  wait_serving
}

rate_loadgen() { sed -n 's/.* records\/s=\([0-9.]*\).*/\1/p' <<<"$1"; }
rate_bench() { python3 -c "import json,sys; print(round(json.loads(sys.stdin.read())['records_per_sec']))" <<<"$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A RATES CPU

# run_client SERVER_NAME CLIENT MODE ROUND: produce RECORDS records to a fresh topic
# through MODE's listener with CLIENT, then consume them.
run_client() {
  local name=$1 client=$2 mode=$3 round=$4 b line before r
  local topic=tls-$client-$mode-$round
  # A create answered late (a busy Kafka) may have been retried: an existing topic will do.
  # Then until Metadata shows it, so that `strata bench` does not try to create it again.
  $STRATA -b "$PLAIN" topic create "$topic" -p 1 >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do
    $STRATA -b "$PLAIN" topic describe "$topic" >/dev/null 2>&1 && break
    sleep 0.1
  done
  for op in produce consume; do
    if [ "$mode" = tls ]; then b=$TLS; else b=$PLAIN; fi
    before=$(cpu_seconds "$SERVER")
    if [ "$client" = librdkafka ]; then
      local extra=()
      [ "$mode" = tls ] && extra=("${TLS_LOADGEN[@]}")
      if [ $op = produce ]; then
        line=$($LOADGEN -b "$b" "${extra[@]}" -t "$topic" -p 1 produce --size 1024 --count "$RECORDS" --acks 1)
      else
        line=$($LOADGEN -b "$b" "${extra[@]}" -t "$topic" -p 1 consume --count "$RECORDS")
      fi
      r=$(rate_loadgen "$line")
    else
      local extra=()
      [ "$mode" = tls ] && extra=("${TLS_BENCH[@]}")
      if [ $op = produce ]; then
        line=$($STRATA "${extra[@]}" -b "$b" bench produce -t "$topic" -n "$RECORDS" -s 1024 -p 1 --acks 1 --json -d 120)
      else
        line=$($STRATA "${extra[@]}" -b "$b" bench consume -t "$topic" -n "$RECORDS" --json -d 120)
      fi
      r=$(rate_bench "$line")
    fi
    local cpu
    cpu=$(per_gb "$before" "$(cpu_seconds "$SERVER")" "$RECORDS" 1024)
    echo "$name round $round $client $mode $op: records/s=$r server_cpu_s_per_GB=$cpu"
    RATES[$name,$client,$op,$mode]+="$r "
    CPU[$name,$client,$op,$mode]+="$cpu "
  done
  # Deleted at once, so the disk holds one round's records at a time.
  $STRATA -b "$PLAIN" topic delete "$topic" >/dev/null
}

start_strata "$STRATA" strata
[ -z "${STRATA_BASELINE:-}" ] || start_strata "$STRATA_BASELINE" baseline
[ "$KAFKA" != 1 ] || start_kafka kafka
for name in "${SERVERS[@]}"; do
  use_server "$name"
  echo "$name: PLAINTEXT $PLAIN, SSL $TLS: $(openssl s_client -connect "$TLS" -CAfile "$ROOT/ca.pem" </dev/null 2>/dev/null | grep -m1 -E '^New,' || echo '?')"
done
for round in $(seq 1 "$ROUNDS"); do
  load_line
  for name in "${SERVERS[@]}"; do
    use_server "$name"
    for client in librdkafka strata-bench; do
      for mode in plaintext tls; do
        run_client "$name" $client $mode "$round"
      done
    done
  done
done
load_line

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
echo
echo "| server | client | work | PLAINTEXT records/s | SSL records/s | SSL / PLAINTEXT | server CPU s/GB PLAINTEXT / SSL |"
echo "|---|---|---|---|---|---|---|"
for name in "${SERVERS[@]}"; do
  for client in librdkafka strata-bench; do
    for op in produce consume; do
      k=$name,$client,$op
      awk -v n="$name" -v c="$client" -v o="$op" -v p="$(med "${RATES[$k,plaintext]}")" \
        -v t="$(med "${RATES[$k,tls]}")" -v cp="$(med "${CPU[$k,plaintext]}")" \
        -v ct="$(med "${CPU[$k,tls]}")" \
        'BEGIN { printf "| %s | %s | %s | %.0f | %.0f | %.2f | %s / %s |\n", n, c, o, p, t, t / p, cp, ct }'
    done
  done
done

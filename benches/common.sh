# Shared by the benchmark scripts (sourced): CPU accounting of server processes.

# cpu_seconds PID...: user + system CPU seconds used so far by these processes, all threads.
cpu_seconds() {
  local tck
  tck=$(getconf CLK_TCK)
  for pid in "$@"; do cat "/proc/$pid/stat"; done |
    awk -v tck="$tck" '{ t += $14 + $15 } END { printf "%.2f", t / tck }'
}

# per_gb CPU_BEFORE CPU_AFTER RECORDS SIZE: CPU seconds per GB of record payload.
per_gb() {
  awk -v a="$1" -v b="$2" -v n="$3" -v s="$4" 'BEGIN { printf "%.2f", (b - a) / (n * s / 1e9) }'
}

# request_times LOG API: the broker's request-time summary line for API (logged at shutdown).
request_times() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep "request times" | grep "api=$2 " | sed 's/.*request times //'
}

# machine_line DIR: cores, CPU model, memory, and the filesystem DIR is on.
machine_line() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB, data on $(df --output=fstype "$1" | tail -1)"
}

# loopback_limit PORT: what one TCP stream over 127.0.0.1 carries (iperf3, 5 s).
loopback_limit() {
  command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null
  iperf3 -s -1 -p "$1" >/dev/null 2>&1 &
  sleep 0.5
  iperf3 -c 127.0.0.1 -p "$1" -t 5 -f g | awk '/sender/{print "iperf3 loopback, 1 stream: " $7 " " $8}'
}

# bench_dir NAME: a fresh directory in ROOT (under DATA_ROOT, default /tmp); on exit every
# pid in PIDS is killed and the directory removed.
bench_dir() {
  ROOT=$(mktemp -d "${DATA_ROOT:-/tmp}/$1-XXXX")
  PIDS=()
  trap 'for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$ROOT"' EXIT
}

# load_line: the load average now (the machine is shared; figures move with it).
load_line() {
  echo "load average (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
}

# kafka_config DIR CONTROLLER_PORT LISTENERS ADVERTISED PROTOCOL_MAP [EXTRA]: a formatted
# single-node Apache Kafka (KRaft combined mode) in DIR, its server.properties with
# LISTENERS (besides the controller's) and EXTRA lines; the jars are in KAFKA_LIBS.
kafka_config() {
  local dir=$1 cport=$2
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=$3,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$4
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$5
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
${6:-}
EOF
  printf 'log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n' \
    >"$dir/log4j.properties"
  java -Xmx256m -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --standalone \
    --cluster-id MkU3OEVBNTcwNTJENDM2Qg --config "$dir/server.properties" >/dev/null
}

# kafka_start DIR: starts the Kafka of kafka_config DIR with its start script's defaults
# (1 GiB heap, G1), logging to DIR/kafka.log; sets KAFKA_PID.
kafka_start() {
  java -Xms1g -Xmx1g -XX:+UseG1GC -Dlog4j.configuration="file:$1/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$1/server.properties" >>"$1/kafka.log" 2>&1 &
  KAFKA_PID=$!
}

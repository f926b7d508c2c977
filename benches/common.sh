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

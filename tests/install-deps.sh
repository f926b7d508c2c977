#!/usr/bin/env bash
# Installs everything the interop tests (tests/interop) need on a Debian 12 machine, as root:
#   * Debian: kcat (librdkafka 2.0.2), the Go toolchain and sarama's packaged Go sources, plus the
#     C/C++ toolchain pieces the native codec builds use;
#   * PyPI (into tests/interop/.venv): confluent-kafka, kafka-python, aiokafka, their codecs,
#     pytest, pytest-timeout, the deploy/ validators kubernetes-validate and PyYAML, and PyJWT with
#     cryptography for the OAUTHBEARER tokens (pinned in tests/interop/requirements.txt);
#   * npm (into tests/interop/js/node_modules, from the committed package-lock.json): kafkajs and
#     its snappy/lz4/zstd codecs, native parts compiled locally from the packages' own sources;
#   * the sarama client binary, built offline from Debian's Go sources into
#     target/interop/sarama-client (rebuilt only when its source or toolchain changed);
#   * log shippers: syslog-ng with its Kafka module (installed), and rsyslog with omkafka
#     (unpacked under target/interop/rsyslog, as the two packages conflict).
#   * Apache Kafka 4.4.0 (broker and tools) from Maven Central into target/kafka-dist/libs, for
#     the differential and Kafka-tools tests (tests/differential/install-kafka.sh; Java 17, mvn).
#   * Java 17 and Maven (Debian), and with them from Maven Central: Kafka's Java client and
#     Kafka Streams program (tests/interop/clients/java -> target/interop/java/) and the
#     spring-kafka scenario app (tests/spring -> target/spring/), rebuilt only when their
#     sources or the JDK changed; once ~/.m2 holds their artifacts Maven runs offline.
# Idempotent and non-interactive; each step checks first and says what it does.
# Environment: PYTHON (default python3) creates the venv; INTEROP_VENV overrides its path.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$REPO/tests/interop"
VENV="${INTEROP_VENV:-$INTEROP/.venv}"
PYTHON="${PYTHON:-python3}"
JS="$INTEROP/js"
SARAMA_SRC="$INTEROP/clients/sarama"
SARAMA_OUT="$REPO/target/interop/sarama-client"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

say() { printf '[install-deps] %s\n' "$*"; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# ---------------------------------------------------------------- Debian packages
APT_PACKAGES=(
    kcat                              # librdkafka 2.0.2 CLI
    golang-go                         # Go toolchain (1.19 on bookworm)
    golang-github-shopify-sarama-dev  # sarama 1.22.1 sources in /usr/share/gocode
    pkg-config libzstd-dev gcc libc6-dev  # cgo zstd (DataDog/zstd links the system libzstd)
    libssl-dev openssl                # librdkafka's TLS and SCRAM (rdkafka "ssl"); test certificates
    g++ make python3                  # node-gyp builds of lz4 and cppzst for kafkajs
    burrow zookeeper                  # the lag monitor, and the ZooKeeper it keeps its state in
    docker-compose systemd iproute2   # deploy/ validators (compose config, systemd-analyze) and namespaces
    syslog-ng-core syslog-ng-mod-rdkafka  # log shipper: syslog-ng's kafka-c destination
    libestr0 libfastjson4 liblognorm5 librdkafka1  # what the unpacked rsyslog and omkafka link
    openjdk-17-jdk-headless maven     # Kafka's Java client, Kafka Streams and spring-kafka (Boot 4 needs 17+)
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "Debian packages present: ${APT_PACKAGES[*]}"
else
    say "apt-get install ${missing[*]}"
    if ! apt-cache policy "${missing[0]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        say "apt-get update (package lists do not know ${missing[0]})"
        sudo_if_needed apt-get update -qq </dev/null
    fi
    sudo_if_needed apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" </dev/null
fi
command -v kcat >/dev/null || die "kcat not on PATH after install"
command -v go >/dev/null || die "go not on PATH after install"
command -v node >/dev/null || die "node is required (Node 20) but not on PATH"
command -v npm >/dev/null || die "npm is required but not on PATH"
command -v java >/dev/null || die "java not on PATH after install"
command -v mvn >/dev/null || die "mvn not on PATH after install"

# ---------------------------------------------------------------- Python venv
REQS="$INTEROP/requirements.txt"
reqs_sum="$(sha256sum "$REQS" | cut -d' ' -f1)"
stamp="$VENV/.interop-requirements.sha256"
py_check='import confluent_kafka, kafka, aiokafka, lz4.frame, snappy, zstandard, cramjam, pytest, pytest_timeout, kubernetes_validate, yaml, jwt, cryptography'
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$reqs_sum" ] \
        && "$VENV/bin/python" -c "$py_check" 2>/dev/null; then
    say "Python venv up to date: $VENV"
else
    if ! [ -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        say "creating venv $VENV with $($PYTHON --version 2>&1)"
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV"; then
            # Debian's own python3 needs python3-venv for this.
            say "apt-get install python3-venv (venv module missing for $PYTHON)"
            rm -rf "$VENV"
            sudo_if_needed apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends python3-venv </dev/null
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    say "pip install -r $REQS into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$REQS"
    "$VENV/bin/python" -c "$py_check" || die "Python packages do not import after install"
    echo "$reqs_sum" > "$stamp"
fi

# ---------------------------------------------------------------- kafkajs + codecs (npm)
# kafkajs-lz4 needs the native lz4 addon and @kafkajs/zstd the native cppzst addon; both
# packages carry their C sources and compile with node-gyp against the local Node headers
# (nothing is downloaded outside the npm registry). cppzst's binding.gyp asks for C++11, which
# Node 20's headers reject, so it is compiled with CXXFLAGS=-std=gnu++17.
js_check='
const r = require("module").createRequire(process.argv[1] + "/package.json");
const k = r("kafkajs");
const codecs = { snappy: r("kafkajs-snappy"), lz4: new (r("kafkajs-lz4"))().codec, zstd: r("@kafkajs/zstd")() };
(async () => {
  const input = Buffer.from("interop interop interop \u00e9\u2713 \x00\x01");
  for (const [name, factory] of Object.entries(codecs)) {
    const c = factory();
    const back = await c.decompress(await c.compress({ buffer: input }));
    if (!input.equals(back)) throw new Error(name + " round trip differs");
  }
})().catch((e) => { console.error(e.message); process.exit(1); });'
lock_sum="$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)"
js_stamp="$JS/node_modules/.interop-lock.sha256"
if [ "$(cat "$js_stamp" 2>/dev/null)" = "$lock_sum" ] && node -e "$js_check" "$JS" 2>/dev/null; then
    say "kafkajs and codecs up to date: $JS/node_modules"
else
    say "npm ci (kafkajs, kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd) in $JS"
    (cd "$JS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    nodedir_args=()
    if [ -f /usr/include/node/node.h ]; then
        nodedir_args=(--nodedir=/usr)
    fi
    say "compiling native codecs (lz4, cppzst) with node-gyp; this takes a minute or two"
    (cd "$JS" && CXXFLAGS="${CXXFLAGS:-} -std=gnu++17" npm rebuild lz4 cppzst "${nodedir_args[@]}" \
        --loglevel=error >"$JS/node_modules/.interop-rebuild.log" 2>&1) \
        || { tail -40 "$JS/node_modules/.interop-rebuild.log" >&2; die "native codec build failed"; }
    node -e "$js_check" "$JS" || die "kafkajs codecs do not round-trip after install"
    echo "$lock_sum" > "$js_stamp"
fi

# ---------------------------------------------------------------- sarama client (Go, offline)
# GOPATH mode against Debian's packaged sources: no module proxy, no network.
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOTOOLCHAIN=local
sarama_version="$(dpkg-query -W -f='${Version}' golang-github-shopify-sarama-dev)"
go_sum="$( (cat "$SARAMA_SRC"/*.go; go version; echo "$sarama_version") | sha256sum | cut -d' ' -f1)"
go_stamp="$SARAMA_OUT.sha256"
if [ -x "$SARAMA_OUT" ] && [ "$(cat "$go_stamp" 2>/dev/null)" = "$go_sum" ]; then
    say "sarama client up to date: $SARAMA_OUT"
else
    say "go build sarama client (sarama $sarama_version, $(go version | cut -d' ' -f3)) -> $SARAMA_OUT"
    mkdir -p "$(dirname "$SARAMA_OUT")"
    # cgo prints deprecation warnings from Debian's DataDog/zstd; show the log only on failure.
    (cd "$SARAMA_SRC" && go build -o "$SARAMA_OUT.tmp" . >"$SARAMA_OUT.build.log" 2>&1) \
        || { cat "$SARAMA_OUT.build.log" >&2; die "sarama client build failed"; }
    mv "$SARAMA_OUT.tmp" "$SARAMA_OUT"
    echo "$go_sum" > "$go_stamp"
fi

# ---------------------------------------------------------------- rsyslog with omkafka (unpacked)
# Debian's rsyslog and syslog-ng conflict as packages, and the tests need both: rsyslog and
# rsyslog-kafka are unpacked (not installed) under target/interop/rsyslog; the test runs that
# rsyslogd with -M pointing at its modules. Nothing of it is started here.
RSYSLOG_ROOT="$REPO/target/interop/rsyslog"
rsyslog_version="$(apt-cache policy rsyslog-kafka | sed -n 's/^ *Candidate: //p')"
if [ -x "$RSYSLOG_ROOT/usr/sbin/rsyslogd" ] && [ -f "$RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so" ] \
        && [ "$(cat "$RSYSLOG_ROOT.version" 2>/dev/null)" = "$rsyslog_version" ]; then
    say "rsyslog with omkafka up to date: $RSYSLOG_ROOT ($rsyslog_version)"
else
    say "unpacking rsyslog and rsyslog-kafka $rsyslog_version into $RSYSLOG_ROOT"
    debs="$(mktemp -d)"
    chmod 0777 "$debs"   # apt-get download drops privileges to _apt for the transfer
    (cd "$debs" && apt-get download -qq rsyslog rsyslog-kafka </dev/null) \
        || die "apt-get download rsyslog rsyslog-kafka failed"
    rm -rf "$RSYSLOG_ROOT"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$RSYSLOG_ROOT"; done
    rm -rf "$debs"
    "$RSYSLOG_ROOT/usr/sbin/rsyslogd" -v >/dev/null || die "unpacked rsyslogd does not run"
    echo "$rsyslog_version" > "$RSYSLOG_ROOT.version"
fi
# ---------------------------------------------------------------- Apache Kafka (Maven Central)
bash "$REPO/tests/differential/install-kafka.sh"
# ---------------------------------------------------------------- Java programs (Maven)
# Each project is built with `mvn -q -B package` (tests skipped; the programs are the tests'
# tools): offline first, which succeeds once ~/.m2 has everything, else online from Maven
# Central. The stamp beside each jar covers the project's sources and the JDK.
build_java() {
    local dir="$1" jar="$2" what="$3"
    local sum stamp log
    sum="$( (cd "$dir" && find pom.xml src -type f -print0 | sort -z | xargs -0 cat; java -version 2>&1) \
        | sha256sum | cut -d' ' -f1)"
    stamp="$jar.sha256"
    log="$jar.build.log"
    if [ -f "$jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
        say "$what up to date: $jar"
        return
    fi
    say "mvn package $what ($(java -version 2>&1 | head -1)) -> $jar"
    mkdir -p "$(dirname "$jar")"
    rm -rf "$(dirname "$jar")/lib"
    if ! (cd "$dir" && mvn -q -B -o package >"$log" 2>&1); then
        say "offline build incomplete; fetching from Maven Central"
        (cd "$dir" && mvn -q -B package >"$log" 2>&1) || { tail -60 "$log" >&2; die "$what build failed"; }
    fi
    [ -f "$jar" ] || die "$what build made no $jar"
    echo "$sum" > "$stamp"
}
build_java "$INTEROP/clients/java" "$REPO/target/interop/java/kafka-java-client.jar" \
    "Kafka Java client and Streams program"
build_java "$REPO/tests/spring" "$REPO/target/spring/strata-spring-scenario.jar" "spring-kafka scenario app"

say "kcat: $(kcat -V 2>&1 | sed -n 's/^Version /kcat /p')"
say "done. Run the interop tests with: tests/interop/run.sh   (same as: $VENV/bin/python -m pytest $INTEROP)"
say "      and the differential and Kafka-tools tests with: tests/differential/run.sh"

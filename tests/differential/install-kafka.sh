#!/usr/bin/env bash
# Installs Apache Kafka 4.4.0 (broker and command-line tools) from Maven Central into
# target/kafka-dist/libs, for the differential tests and the Kafka-tools tests (tests/differential).
# Kafka's shell scripts are not published to Maven Central, so the tests start the broker with
# `java -cp 'target/kafka-dist/libs/*' kafka.Kafka server.properties` and run each tool by its
# main class. Idempotent: a stamp records the pom's checksum and the step is skipped while it
# matches and the jars are present. Needs java (17+) and mvn on PATH.
# Environment: KAFKA_DIST overrides the install directory (default <repo>/target/kafka-dist).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$REPO/tests/differential/pom.xml"
DIST="${KAFKA_DIST:-$REPO/target/kafka-dist}"
LIBS="$DIST/libs"
STAMP="$DIST/.pom.sha256"

say() { printf '[install-kafka] %s\n' "$*"; }
die() { printf '[install-kafka] ERROR: %s\n' "$*" >&2; exit 1; }

command -v java >/dev/null || die "java (17 or newer) is required but not on PATH"
command -v mvn >/dev/null || die "mvn (Maven 3) is required but not on PATH"

pom_sum="$(sha256sum "$POM" | cut -d' ' -f1)"
have_jars() {
    for jar in kafka_2.13-4.4.0 kafka-server-4.4.0 kafka-tools-4.4.0 kafka-clients-4.4.0; do
        [ -f "$LIBS/$jar.jar" ] || return 1
    done
}
if [ "$(cat "$STAMP" 2>/dev/null)" = "$pom_sum" ] && have_jars; then
    say "Apache Kafka 4.4.0 present: $LIBS ($(ls "$LIBS" | wc -l) jars)"
    exit 0
fi

say "mvn dependency:copy-dependencies (Apache Kafka 4.4.0 and its runtime jars) -> $LIBS"
rm -rf "$LIBS"
mkdir -p "$DIST"
mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.dist.dir="$DIST" dependency:copy-dependencies </dev/null \
    || die "Maven could not resolve Apache Kafka 4.4.0"
have_jars || die "Kafka jars missing from $LIBS after mvn"
version="$(java -cp "$LIBS/*" kafka.Kafka --version 2>/dev/null | tail -1)"
[ "$version" = 4.4.0 ] || die "kafka.Kafka --version says ${version:-nothing}, not 4.4.0"
echo "$pom_sum" > "$STAMP"
say "installed $(ls "$LIBS" | wc -l) jars into $LIBS"

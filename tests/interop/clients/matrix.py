"""The interop matrix in one place: which client programs exist, how to run them, and which
codec cells they cannot take part in (with the reason the test reports when it skips them).

Every client implements the interface described in common.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import common

CLIENTS_DIR = Path(__file__).resolve().parent
INTEROP_DIR = CLIENTS_DIR.parent
REPO = INTEROP_DIR.parent.parent
SARAMA_BIN = Path(os.environ.get("SARAMA_CLIENT", REPO / "target" / "interop" / "sarama-client"))
# Kafka's Java client and Kafka Streams (clients/java, built by tests/install-deps.sh).
JAVA_CLIENT_JAR = Path(os.environ.get("JAVA_CLIENT_JAR",
                                      REPO / "target" / "interop" / "java" / "kafka-java-client.jar"))
# A JVM per run: C1 only and the serial collector start fastest on a small machine; the
# clients' own logs at WARN and up go to stderr.
JAVA_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.logFile=System.err"]


def java_argv(jar: Path) -> list[str]:
    """How to run a jar: `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else (shutil.which("java") or "java")
    return [java, *JAVA_OPTS, "-jar", str(jar)]

SARAMA_ZSTD_PRODUCE = (
    "sarama 1.22.1 (Debian's golang-github-shopify-sarama-dev) sends Produce v3; Kafka accepts "
    "zstd batches only in Produce v7+ (KIP-110)"
)
SARAMA_ZSTD_FETCH = (
    "sarama 1.22.1 fetches with Fetch v4; Kafka answers Fetch < v10 on zstd batches with "
    "UNSUPPORTED_COMPRESSION_TYPE (KIP-110)"
)


@dataclass(frozen=True)
class Client:
    name: str
    # What the client library is, for reports.
    library: str
    # codec -> reason, for codecs this client cannot produce with.
    produce_skip: dict[str, str] = field(default_factory=dict)
    # codec of the produced topic -> reason, for topics this client cannot read.
    consume_skip: dict[str, str] = field(default_factory=dict)
    # False: the client cannot set per-record headers/timestamps; see expected_headers().
    per_record_headers: bool = True
    explicit_timestamps: bool = True

    def argv(self) -> list[str]:
        if self.name == "kafkajs":
            return [shutil.which("node") or "node", str(CLIENTS_DIR / "kafkajs_client.js")]
        if self.name == "sarama":
            return [str(SARAMA_BIN)]
        if self.name == "java":
            return java_argv(JAVA_CLIENT_JAR)
        script = {
            "kcat": "kcat_client.py",
            "confluent-kafka": "confluent_kafka_client.py",
            "kafka-python": "kafka_python_client.py",
            "aiokafka": "aiokafka_client.py",
        }[self.name]
        return [sys.executable, str(CLIENTS_DIR / script)]

    def produce_codecs(self) -> list[str]:
        return [c for c in common.CODECS if c not in self.produce_skip]


CLIENTS: dict[str, Client] = {c.name: c for c in [
    Client("kcat", "kcat 1.7.1 CLI, librdkafka 2.0.2 (Debian)",
           per_record_headers=False, explicit_timestamps=False),
    Client("confluent-kafka", "confluent-kafka (PyPI), bundled librdkafka 2.x"),
    Client("kafka-python", "kafka-python 3.x (PyPI), python-snappy/lz4/zstandard"),
    Client("aiokafka", "aiokafka (PyPI), cramjam codecs"),
    Client("kafkajs", "kafkajs 2.2.4 (npm), kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd"),
    Client("sarama", "sarama 1.22.1 (Debian golang-github-shopify-sarama-dev)",
           produce_skip={"zstd": SARAMA_ZSTD_PRODUCE},
           consume_skip={"zstd": SARAMA_ZSTD_FETCH}),
    Client("java", "Apache Kafka's Java client (kafka-clients 4.3.1, Maven Central)"),
]}

NAMES = list(CLIENTS)


def expected_headers(producer: str, prefix: str, i: int) -> list[tuple[str, bytes]]:
    if CLIENTS[producer].per_record_headers:
        return common.record_headers(prefix, i)
    # kcat: fixed headers for the whole run, from argv (see kcat_client.py).
    import kcat_client
    return kcat_client.kcat_headers(prefix)


def matrix_table() -> str:
    """A plain-text table of the produce x consume codec coverage, for reports."""
    rows = ["client           | produce codecs                | reads topics with codecs"]
    for c in CLIENTS.values():
        prod = ",".join(c.produce_codecs())
        cons = ",".join(x for x in common.CODECS if x not in c.consume_skip)
        rows.append(f"{c.name:<16} | {prod:<29} | {cons}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(matrix_table())

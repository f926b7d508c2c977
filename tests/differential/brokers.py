"""Start the two brokers the differential tests compare: Apache Kafka 4.4.0 (from
target/kafka-dist, installed by install-kafka.sh) and Strata (STRATA_BIN, started the way
tests/interop/conftest.py starts it). Both get the same settings (BROKER_PROPERTIES), listen on
a free loopback port and keep their data in a temporary directory.

Environment:
  STRATA_BIN   the strata binary (default <repo>/target/release/strata)
  KAFKA_DIST   the Kafka install (default <repo>/target/kafka-dist; jars in its libs/)
  JAVA         the java binary (default: java on PATH)
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import raw

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KAFKA_DIST = Path(os.environ.get("KAFKA_DIST", REPO / "target" / "kafka-dist"))
JAVA = os.environ.get("JAVA", "java")
KAFKA_START_TIMEOUT_S = 90.0

# Broker settings both brokers run with (Kafka property names).
BROKER_PROPERTIES: dict[str, object] = {
    "auto.create.topics.enable": False,
    "num.partitions": 1,
    "default.replication.factor": 1,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 3,
    "group.initial.rebalance.delay.ms": 0,
}

# The interop fixtures' Strata start, loaded under a name of its own (both files are "conftest").
_spec = importlib.util.spec_from_file_location("interop_conftest", REPO / "tests" / "interop" / "conftest.py")
interop = importlib.util.module_from_spec(_spec)
sys.modules["interop_conftest"] = interop
_spec.loader.exec_module(interop)
Broker = interop.Broker


def kafka_classpath() -> str:
    libs = KAFKA_DIST / "libs"
    if not (libs / "kafka_2.13-4.4.0.jar").is_file():
        pytest.fail(f"Apache Kafka 4.4.0 is not installed in {libs}: run tests/differential/install-kafka.sh "
                    f"(tests/install-deps.sh runs it)", pytrace=False)
    return str(libs / "*")


def write_log4j(directory: Path) -> Path:
    """A log4j 1 (reload4j) configuration: warnings and errors to stderr, nothing else."""
    path = directory / "log4j.properties"
    path.write_text("log4j.rootLogger=WARN, stderr\n"
                    "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.stderr.Target=System.err\n"
                    "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n")
    return path


def java_argv(main_class: str, log4j: Path, *args: str, heap: str = "256m") -> list[str]:
    """`java` running `main_class` from the Kafka install; short-lived tools start faster with
    tiered compilation stopped at C1 and the serial collector."""
    return [JAVA, f"-Xmx{heap}", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
            f"-Dlog4j.configuration=file:{log4j}", "-Dlog4j2.level=WARN",
            "-cp", kafka_classpath(), main_class, *args]


def start_strata(tmp: Path) -> Broker:
    return interop.start_strata(tmp, BROKER_PROPERTIES)


def start_kafka(tmp: Path) -> Broker:
    """Apache Kafka in KRaft combined mode (broker and controller, node 1), storage formatted
    with `kafka-storage format --standalone`."""
    tmp.mkdir(parents=True, exist_ok=True)
    port, controller_port = interop._free_port(), interop._free_port()
    props = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(tmp / "data"),
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        **BROKER_PROPERTIES,
    }
    config = tmp / "server.properties"
    config.write_text("".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}\n" for k, v in props.items()))
    log4j = write_log4j(tmp)
    log_path = tmp / "kafka.log"
    fmt = subprocess.run(java_argv("kafka.tools.StorageTool", log4j, "format", "--standalone",
                                   "--cluster-id", "MkU3OEVBNTcwNTJENDM2Qg", "--config", str(config)),
                         capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    if fmt.returncode != 0:
        pytest.fail(f"kafka-storage format failed ({fmt.returncode}): {fmt.stdout.decode()}{fmt.stderr.decode()}",
                    pytrace=False)
    argv = java_argv("kafka.Kafka", log4j, str(config), heap="768m")
    # The broker itself runs with the default JIT: it serves the whole session.
    argv = [a for a in argv if a not in ("-XX:TieredStopAtLevel=1",)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    log.close()
    broker = Broker("kafka", "127.0.0.1", port, proc, log_path, argv)
    deadline = time.monotonic() + KAFKA_START_TIMEOUT_S
    while not interop._accepts("127.0.0.1", port):
        if proc.poll() is not None:
            pytest.fail(f"Kafka exited with status {proc.returncode} before listening; command: "
                        f"{shlex.join(argv)}\nlog tail:\n{broker.log_tail()}", pytrace=False)
        if time.monotonic() > deadline:
            broker.stop()
            pytest.fail(f"Kafka did not listen on 127.0.0.1:{port} within {KAFKA_START_TIMEOUT_S:.0f}s\n"
                        f"log tail:\n{broker.log_tail()}", pytrace=False)
        time.sleep(0.2)
    return broker


def wait_ready(broker: Broker, timeout_s: float = 60.0) -> None:
    """Until the broker answers Metadata with itself as a broker (Kafka listens before its
    metadata is published)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 2})
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        broker.check_alive()
        try:
            md = admin.list_topics(timeout=5)
            if not md.brokers:
                last = "no brokers in metadata"
            else:
                # The group coordinator answers (Kafka creates __consumer_offsets on the first
                # lookup; a scenario must not be the one to do it).
                c = raw.call(broker.bootstrap, "FindCoordinator", 4, {"key_type": 0, "coordinator_keys": ["warm-up"]})
                code = c["coordinators"][0]["error_code"]
                if code == 0:
                    # Start Kafka's transaction coordinator too (its topic is made on the first
                    # transactional lookup); the answer does not matter here.
                    raw.call(broker.bootstrap, "FindCoordinator", 4, {"key_type": 1, "coordinator_keys": ["warm-up"]})
                    return
                last = f"FindCoordinator error {code}"
        except Exception as e:  # noqa: BLE001
            last = repr(e)
        time.sleep(0.2)
    pytest.fail(f"{broker.kind} not ready within {timeout_s:.0f}s: {last}\n{broker.log_tail()}", pytrace=False)

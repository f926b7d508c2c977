"""Kafka Streams (the Java library, at_least_once) against Strata: a word count reads lines from
an input topic, repartitions by word through an internal topic, counts in a state store backed
by a compacted changelog topic, and writes word -> count to an output topic. The test produces
known lines and checks the latest count of every word in the output, and that Streams created
its internal topics (repartition, changelog with cleanup.policy=compact). The Java client's
produce/consume cells are in test_interop.py's matrix and its group member in test_groups.py."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import matrix
from conftest import create_topic

WORDS = ["strata", "kafka", "streams", "log", "segment", "raft", "replica", "offset", "group", "topic",
         "batch", "leader"]


def _lines(n: int) -> list[str]:
    rng = random.Random(1234)
    return [" ".join(rng.choice(WORDS).upper() if rng.random() < 0.1 else rng.choice(WORDS)
                     for _ in range(rng.randint(1, 8))) + rng.choice(["", ".", "!"]) for _ in range(n)]


def _states(out: Path) -> list[str]:
    states = []
    for line in out.read_text(errors="replace").splitlines():
        try:
            states.append(json.loads(line)["state"])
        except (ValueError, KeyError, TypeError):
            pass
    return states


@pytest.mark.timeout(150)
def test_kafka_streams_word_count(broker, admin, tmp_path):
    if broker.is_mock:
        pytest.skip("Kafka Streams needs a broker's groups and internal topics")
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    run = uuid.uuid4().hex[:8]
    source, sink, app = f"wc-lines-{run}", f"wc-counts-{run}", f"wordcount-{run}"
    create_topic(broker, admin, source, partitions=3)
    create_topic(broker, admin, sink, partitions=3)
    out, err = tmp_path / "streams.out", tmp_path / "streams.err"
    argv = matrix.java_argv(matrix.JAVA_CLIENT_JAR) + [
        "wordcount", "--bootstrap", broker.bootstrap, "--input", source, "--output", sink,
        "--app-id", app, "--state-dir", str(tmp_path / "state"), "--timeout", "120"]
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e)

    def report() -> str:
        return (f"states: {_states(out)}\nstderr tail:\n{err.read_text(errors='replace')[-3000:]}")

    try:
        deadline = time.monotonic() + 60
        while "RUNNING" not in _states(out):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Kafka Streams did not reach RUNNING (exit {proc.poll()})\n{report()}", pytrace=False)
            time.sleep(0.2)

        lines = _lines(400)
        expected = Counter(w for line in lines for w in line.lower().replace(".", " ").replace("!", " ").split())
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        for i, line in enumerate(lines):
            producer.produce(source, key=f"line-{i}", value=line)
        assert producer.flush(30) == 0, "every line acknowledged"

        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"wc-check-{run}",
                             "enable.auto.commit": False, "log_level": 2})
        consumer.assign([TopicPartition(sink, p, 0) for p in range(3)])
        latest: dict[str, int] = {}
        deadline = time.monotonic() + 60
        try:
            while latest != expected and time.monotonic() < deadline:
                assert proc.poll() is None, f"Kafka Streams exited early ({proc.returncode})\n{report()}"
                m = consumer.poll(0.5)
                if m is None or m.error():
                    continue
                latest[m.key().decode()] = int.from_bytes(m.value(), "big", signed=True)
        finally:
            consumer.close()
        wrong = {w: (latest.get(w), n) for w, n in expected.items() if latest.get(w) != n}
        extra = set(latest) - set(expected)
        assert not wrong and not extra, (f"latest counts differ (word: (got, expected)): {wrong}; "
                                         f"words never written: {extra}\n{report()}")

        # Streams made its internal topics through CreateTopics: the repartition topic and the
        # store's changelog, compacted.
        names = set(admin.list_topics(timeout=10).topics)
        repartition, changelog = f"{app}-words-repartition", f"{app}-word-counts-changelog"
        assert {repartition, changelog} <= names, f"internal topics missing: {sorted(n for n in names if app in n)}"
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, changelog)
        configs = admin.describe_configs([res])[res].result(timeout=10)
        assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        # 143: the JVM's status after SIGTERM once its shutdown hook (KafkaStreams.close) ran.
        assert rc in (0, 143), f"Kafka Streams did not close cleanly (exit {rc})\n{report()}"
        assert _states(out)[-1] == "NOT_RUNNING", f"Kafka Streams did not close cleanly\n{report()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

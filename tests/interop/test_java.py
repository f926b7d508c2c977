"""Kafka Streams (the Java library) against Strata: a word count reads lines from an input topic,
repartitions by word through an internal topic, counts in a state store backed by a compacted
changelog topic, and writes word -> count to an output topic. At least once on the session's
node: the test produces known lines and checks the latest count of every word in the output,
and that Streams created its internal topics (repartition, changelog with
cleanup.policy=compact). Exactly once (exactly_once_v2: a transactional producer per stream
thread, offsets committed in its transactions, KIP-447) on three nodes, one of which (the
transaction coordinator of a stream thread's producer) is killed with SIGKILL mid-run and
started again: a read_committed reader of the output sees every word's counts as exactly
1, 2, ..., n. The Java client's produce/consume cells are in test_interop.py's matrix and its
group member in test_groups.py."""

from __future__ import annotations

import json
import os
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
from conftest import create_topic, start_cluster, transactions

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


def _counted(lines: list[str]) -> Counter:
    """The words of `lines` as the word count splits them (lower case, on non-word characters)."""
    return Counter(w for line in lines for w in line.lower().replace(".", " ").replace("!", " ").split())


def _create_replicated(bootstrap: str, names: list[str], partitions: int, replication: int) -> None:
    """Create `names` with `replication` replicas and wait until every partition has a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2, "log.connection.close": False})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=replication)
                                   for n in names], operation_timeout=10, request_timeout=15)
    for name, f in futures.items():
        f.result(timeout=20)
    deadline = time.monotonic() + 15
    for name in names:
        while True:
            t = admin.list_topics(topic=name, timeout=5).topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions and all(
                    p.leader >= 0 and len(p.replicas) == replication for p in t.partitions.values()):
                break
            assert time.monotonic() < deadline, f"{name}: no leaders after 15s ({t and t.error})"
            time.sleep(0.2)


def _leaders(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2, "log.connection.close": False})
    md = admin.list_topics(timeout=10)
    return {f"{t}-{p}": pm.leader for t in topics if t in md.topics for p, pm in md.topics[t].partitions.items()}


@pytest.mark.timeout(170)
def test_kafka_streams_exactly_once_with_a_broker_killed(tmp_path):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    cluster = start_cluster(tmp_path / "cluster", 3)
    run = uuid.uuid4().hex[:8]
    source, sink, app = f"eos-lines-{run}", f"eos-counts-{run}", f"eos-wordcount-{run}"
    procs: list[subprocess.Popen] = []

    def report() -> str:
        return "\n".join(f"instance {i + 1} states: {_states(tmp_path / f'streams-{i + 1}.out')}\nstderr tail:\n"
                         + (tmp_path / f"streams-{i + 1}.err").read_text(errors="replace")[-2500:]
                         for i in range(len(procs))) + "\n" + cluster.log_tails()

    def start_streams() -> subprocess.Popen:
        """An instance of the app on the same state directory: the same process id, so the
        same transactional ids as the one before it."""
        n = len(procs) + 1
        out, err = tmp_path / f"streams-{n}.out", tmp_path / f"streams-{n}.err"
        argv = matrix.java_argv(matrix.JAVA_CLIENT_JAR) + [
            "wordcount", "--bootstrap", cluster.bootstrap, "--input", source, "--output", sink,
            "--app-id", app, "--state-dir", str(tmp_path / "state"), "--timeout", "150",
            "--guarantee", "exactly_once_v2", "--replication", "3",
            # Transactions of a second: the app's kill below lands in one with work in it.
            "--commit-interval-ms", "1000"]
        with out.open("wb") as o, err.open("wb") as e:
            procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e))
        deadline = time.monotonic() + 60
        while "RUNNING" not in _states(out):
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Kafka Streams did not reach RUNNING (exit {procs[-1].poll()})\n{report()}",
                            pytrace=False)
            time.sleep(0.2)
        return procs[-1]

    try:
        _create_replicated(cluster.bootstrap, [source, sink], partitions=3, replication=3)
        proc = start_streams()

        lines = _lines(1200)
        expected = _counted(lines)
        # Idempotent: the input itself gets no duplicates from retries while a node is down.
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True,
                             "linger.ms": 5, "log_level": 2})

        def feed(part: list[str], first: int, seconds: float) -> None:
            for i, line in enumerate(part):
                producer.produce(source, key=f"line-{first + i}", value=line)
                producer.poll(0)
                time.sleep(seconds / len(part))

        third = len(lines) // 3
        feed(lines[:third], 0, 4)
        # The victim: the transaction coordinator of a stream thread's producer, once the
        # threads run transactions; without one, the leader of the output's partition 0.
        txns: list[dict] = []
        deadline = time.monotonic() + 20
        while not txns and time.monotonic() < deadline:
            txns = transactions(cluster.bootstrap, app)
        internal = [f"{app}-words-repartition", f"{app}-word-counts-changelog"]
        leaders = _leaders(cluster.bootstrap, [sink, *internal])
        victim = txns[0]["coordinator"] if txns else leaders[f"{sink}-0"]
        led = sorted(tp for tp, node in leaders.items() if node == victim)
        cluster.node(victim).kill()
        feed(lines[third:2 * third], third, 3)
        cluster.node(victim).start()
        # Then the app itself dies mid-transaction (SIGKILL) and a new instance takes over:
        # its producers fence the dead ones' and their open transactions are aborted.
        feed(lines[2 * third:2 * third + third // 2], 2 * third, 2)
        proc.kill()
        proc.wait(timeout=10)
        feed(lines[2 * third + third // 2:], 2 * third + third // 2, 1)
        assert producer.flush(30) == 0, "every line acknowledged"
        proc = start_streams()

        # read_committed: only committed transactions' counts. Each word's counts must be
        # 1, 2, ..., n in order: a repeated or skipped value is a count applied twice or lost.
        def read(isolation: str, until: Counter | None, limit_s: float) -> dict[str, list[int]]:
            consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"eos-check-{run}-{isolation}",
                                 "enable.auto.commit": False, "isolation.level": isolation, "log_level": 2})
            consumer.assign([TopicPartition(sink, p, 0) for p in range(3)])
            seen: dict[str, list[int]] = {}
            end = time.monotonic() + limit_s
            quiet_until = None
            try:
                while time.monotonic() < end:
                    m = consumer.poll(0.5)
                    if m is None or m.error():
                        if until is not None and quiet_until is None and {
                                w: v[-1] for w, v in seen.items()} == dict(until):
                            # Done; anything late (a duplicate) would arrive within this.
                            quiet_until = time.monotonic() + 2
                        if quiet_until is not None and time.monotonic() > quiet_until:
                            break
                        continue
                    seen.setdefault(m.key().decode(), []).append(int.from_bytes(m.value(), "big", signed=True))
            finally:
                consumer.close()
            return seen

        committed = read("read_committed", expected, 75)
        assert proc.poll() is None, f"Kafka Streams exited ({proc.returncode})\n{report()}"
        latest = {w: v[-1] for w, v in committed.items()}
        wrong_latest = {w: (latest.get(w), n) for w, n in expected.items() if latest.get(w) != n}
        not_stepwise = {w: v for w, v in committed.items() if v != list(range(1, len(v) + 1))}
        extra = set(committed) - set(expected)
        uncommitted = read("read_uncommitted", None, 3)
        aborted = sum(map(len, uncommitted.values())) - sum(map(len, committed.values()))
        note = (f"node {victim} killed and restarted mid-run (transaction coordinator of "
                f"{[t['id'] for t in txns if t['coordinator'] == victim] or 'no stream thread'}, leader of {led}), "
                f"then the app killed and started again; {sum(expected.values())} words counted, {aborted} "
                f"records of aborted transactions in {sink}")
        print(note)
        assert not wrong_latest and not not_stepwise and not extra, (
            f"{note}\nlatest committed counts differ (word: (got, expected)): {wrong_latest}; counts not "
            f"1, 2, ..., n: { {w: v[:40] for w, v in not_stepwise.items()} }; words never written: {extra}\n{report()}")

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        assert rc in (0, 143), f"Kafka Streams did not close cleanly (exit {rc})\n{report()}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        cluster.stop()

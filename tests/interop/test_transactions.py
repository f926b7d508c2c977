"""Transactions (KIP-98, KIP-447, KIP-890 part 1) with real clients other than the rdkafka crate
of the Rust tests: confluent-kafka (librdkafka), kafkajs and Kafka's Java client.

- confluent-kafka: commit and abort, seen through read_committed and read_uncommitted consumers,
  also while a transaction is open; a consume-transform-produce loop with
  send_offsets_to_transaction and aborted transactions in the middle, exactly once over 10,000
  records; a producer killed mid-transaction is aborted after its transaction.timeout.ms and
  the last stable offset moves on; a second producer with the same transactional.id fences the
  first.
- kafkajs: commit, abort and sendOffsets, read by its own consumer (readUncommitted false).
- Java: a consume-transform-produce loop (initTransactions, sendOffsetsToTransaction with the
  consumer's groupMetadata, commitTransaction, abortTransaction) read back by an
  isolation.level=read_committed consumer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource

import matrix
from conftest import create_topic, start_cluster

# The errors a fenced transactional producer reports: librdkafka's own _FENCED, or the broker's
# codes as the client passes them on.
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def _needs_broker(broker) -> None:
    if broker.is_mock:
        pytest.skip("transactions are tested against Strata")
    broker.check_alive()


def _run_id() -> str:
    return uuid.uuid4().hex[:8]


def _txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
            "log_level": 2, "log.connection.close": False}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(20)
    return p


class _Wedged(Exception):
    """A client call that had not returned long after its own timeout."""


def _bounded(call: Callable[[], object], seconds: float) -> object:
    """`call()` on a daemon thread: its result or exception, or _Wedged when it has not
    returned after `seconds` (the thread is then left behind).

    librdkafka's send_offsets_to_transaction can ignore its timeout and block for good when the
    broker it has cached as the group's coordinator has left the metadata (fenced after a kill)
    by the time it sends TxnOffsetCommit: librdkafka issues #5456 and #5511, open in 2.16. A
    Python timeout cannot interrupt that call, so the loop bounds it here."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _Wedged(f"no return after {seconds:.0f}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def drain(bootstrap: str, topic: str, isolation: str, timeout: float = 20.0) -> dict[int, list[str]]:
    """Every record of `topic` a consumer of `isolation` level reads from the beginning up to
    the end it is shown (the high watermark, or for read_committed the last stable offset):
    partition -> values in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"txn-drain-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation, "log_level": 2, "log.connection.close": False})
    try:
        parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        got: dict[int, list[str]] = {p: [] for p in parts}
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while at_end != set(parts):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{isolation} read of {topic} did not reach the end of partitions "
                            f"{sorted(set(parts) - at_end)} within {timeout:.0f}s "
                            f"(read so far: { {p: len(v) for p, v in got.items()} })", pytrace=False)
            m = c.poll(min(left, 0.5))
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    continue
                pytest.fail(f"{isolation} read of {topic}: {m.error()}", pytrace=False)
            at_end.discard(m.partition())
            got[m.partition()].append(m.value().decode())
        return got
    finally:
        c.close()


def _flat(by_partition: dict[int, list[str]]) -> list[str]:
    return [v for p in sorted(by_partition) for v in by_partition[p]]


def _produce_each(p: Producer, topic: str, values: list[str], partitions: int) -> None:
    """Sends value i to partition i % partitions and waits for every acknowledgement."""
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()} [{msg.partition()}]: {err}")

    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, value=v.encode(), partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(20) == 0, "every record acknowledged within 20s"
    assert not errors, f"delivery failed: {errors[:3]}"


def _split(values: list[str], partitions: int) -> dict[int, list[str]]:
    return {p: values[p::partitions] for p in range(partitions)}


def _merge(*parts: dict[int, list[str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for d in parts:
        for p, v in d.items():
            out.setdefault(p, []).extend(v)
    return out


@pytest.mark.timeout(120)
def test_confluent_commit_and_abort_by_isolation_level(broker, admin):
    _needs_broker(broker)
    run = _run_id()
    topic = f"txn-ca-{run}"
    n = create_topic(broker, admin, topic, partitions=3)
    p = _txn_producer(broker.bootstrap, f"txn-ca-{run}")

    def txn(values: list[str], commit: bool | None) -> dict[int, list[str]]:
        """One transaction of `values`, flushed to the log, then committed, aborted or (None)
        left open."""
        p.begin_transaction()
        _produce_each(p, topic, values, n)
        if commit is True:
            p.commit_transaction(20)
        elif commit is False:
            p.abort_transaction(20)
        return _split(values, n)

    c1 = txn([f"c1-{i}" for i in range(30)], True)
    a1 = txn([f"a1-{i}" for i in range(30)], False)
    c2 = txn([f"c2-{i}" for i in range(30)], True)
    o = txn([f"o-{i}" for i in range(30)], None)

    # An open transaction holds back read_committed readers at its first offset; read_uncommitted
    # readers see everything, the aborted records too.
    assert drain(broker.bootstrap, topic, "read_committed") == _merge(c1, c2), \
        "read_committed with a transaction open: the committed records only, in order"
    assert drain(broker.bootstrap, topic, "read_uncommitted") == _merge(c1, a1, c2, o), \
        "read_uncommitted: every record written, aborted and open ones too"
    assert _java_read_committed(broker.bootstrap, topic, 60) == _merge(c1, c2), \
        "the Java client's read_committed consumer with a transaction open: the committed records only"

    p.commit_transaction(20)
    a2 = txn([f"a2-{i}" for i in range(30)], False)  # an abort at the end of the log
    c3 = txn([f"c3-{i}" for i in range(30)], True)
    a3 = txn([f"a3-{i}" for i in range(30)], False)

    committed = drain(broker.bootstrap, topic, "read_committed")
    assert not [v for v in _flat(committed) if v.startswith("a")], "read_committed never sees aborted records"
    assert committed == _merge(c1, c2, o, c3), "read_committed: every committed record once, in order"
    assert drain(broker.bootstrap, topic, "read_uncommitted") == _merge(c1, a1, c2, o, a2, c3, a3), \
        "read_uncommitted: every record written, in order"
    assert _java_read_committed(broker.bootstrap, topic, len(_flat(committed))) == committed, \
        "the Java client's read_committed consumer: every committed record once, in order"
    # The same id again (a new epoch): its transaction is read after the aborted one at the end.
    p2 = _txn_producer(broker.bootstrap, f"txn-ca-{run}")
    c4 = txn_with(p2, topic, [f"c4-{i}" for i in range(9)], n)
    assert drain(broker.bootstrap, topic, "read_committed") == _merge(c1, c2, o, c3, c4)


def _java_read_committed(bootstrap: str, topic: str, count: int) -> dict[int, list[str]]:
    """What Kafka's Java consumer with isolation.level=read_committed reads of `topic` from the
    beginning: `count` records and whatever else arrives within 2s after them."""
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    r = subprocess.run(matrix.java_argv(matrix.JAVA_CLIENT_JAR) + [
        "consume", "--bootstrap", bootstrap, "--topic", topic, "--count", str(count), "--timeout", "60",
        "--isolation", "read_committed", "--extra-wait-ms", "2000"], capture_output=True, timeout=90,
        stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"java consume exited {r.returncode}: {r.stderr.decode(errors='replace')[-3000:]}"
    read: dict[int, list[str]] = {}
    for line in r.stdout.decode().splitlines():
        rec = json.loads(line)
        read.setdefault(rec["partition"], []).append(bytes.fromhex(rec["value"]).decode())
    return read


def txn_with(p: Producer, topic: str, values: list[str], partitions: int) -> dict[int, list[str]]:
    p.begin_transaction()
    _produce_each(p, topic, values, partitions)
    p.commit_transaction(20)
    return _split(values, partitions)


INPUT_RECORDS = 10_000
# Transactions with these (1-based) numbers are flushed and aborted, then redone.
ABORTED_TXNS = {3, 8, 13}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_confluent_consume_transform_produce_exactly_once(broker, admin, protocol):
    """`protocol`: the consumer group's, classic or KIP-848's (whose member epoch is the
    generation TxnOffsetCommit checks)."""
    _needs_broker(broker)
    run = _run_id()
    source, sink = f"txn-in-{run}", f"txn-out-{run}"
    create_topic(broker, admin, source, partitions=3)
    create_topic(broker, admin, sink, partitions=3)
    _consume_transform_produce(broker.bootstrap, source, sink, 3, run, protocol)


@pytest.mark.timeout(300)
def test_confluent_consume_transform_produce_on_three_nodes(tmp_path):
    """The same loop on three nodes, topics with replication factor 3: the transaction
    coordinator, the group coordinator and the partitions' leaders are spread over the nodes,
    so markers go out with WriteTxnMarkers."""
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    run = _run_id()
    source, sink = f"txn-in-{run}", f"txn-out-{run}"
    cluster, admin = _start_cluster_with_topics(tmp_path, [source, sink])
    try:
        leaders = {p.leader for p in admin.list_topics(topic=sink, timeout=5).topics[sink].partitions.values()}
        print(f"output partition leaders: {sorted(leaders)}")
        _consume_transform_produce(cluster.bootstrap, source, sink, 3, run, "classic")
    finally:
        cluster.stop()


def _java_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units), which places a transactional id on its
    `__transaction_state` partition: Utils.abs(hash) % partitions."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _start_cluster_with_topics(tmp_path, names: list[str]):
    from confluent_kafka.admin import AdminClient, NewTopic
    cluster = start_cluster(tmp_path / "cluster", 3)
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 2})
        futures = admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=3) for t in names],
                                      operation_timeout=15, request_timeout=20)
        for f in futures.values():
            f.result(timeout=30)
        deadline = time.monotonic() + 20
        while not all(
                (t := admin.list_topics(topic=name, timeout=5).topics.get(name)) is not None and t.error is None
                and len(t.partitions) == 3 and all(p.leader >= 0 for p in t.partitions.values())
                for name in names):
            assert time.monotonic() < deadline, f"topics without leaders after 20s\n{cluster.log_tails()}"
            time.sleep(0.2)
    except BaseException:
        cluster.stop()
        raise
    return cluster, admin


@pytest.mark.timeout(300)
def test_confluent_consume_transform_produce_survives_the_transaction_coordinator_killed(tmp_path):
    """The loop on three nodes while the node that coordinates its transactional id is killed
    (SIGKILL) after the 6th commit and started again 3s later: still each input exactly once."""
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    run = _run_id()
    source, sink = f"txn-in-{run}", f"txn-out-{run}"
    cluster, admin = _start_cluster_with_topics(tmp_path, [source, sink])
    restart: list[threading.Thread] = []

    def kill_coordinator(k: int) -> None:
        if k != 6:
            return
        states = admin.list_topics(topic="__transaction_state", timeout=10).topics["__transaction_state"]
        h = _java_hash(f"txn-ctp-{run}")
        partition = (0 if h == -(1 << 31) else abs(h)) % len(states.partitions)  # Kafka's Utils.abs
        node = cluster.node(states.partitions[partition].leader)
        print(f"killing node {node.node_id}, leader of __transaction_state [{partition}]")
        node.kill()
        t = threading.Timer(3, node.start)
        t.start()
        restart.append(t)

    try:
        _consume_transform_produce(cluster.bootstrap, source, sink, 3, run, "classic", after_commit=kill_coordinator)
        assert restart, "the coordinator was killed"
    finally:
        for t in restart:
            t.join(timeout=30)
        cluster.stop()


def _consume_transform_produce(bootstrap: str, source: str, sink: str, n: int, run: str, protocol: str,
                               after_commit: Callable[[int], None] | None = None) -> None:
    """Copies INPUT_RECORDS records from `source` to `sink` (both with `n` partitions) in
    transactions, aborting and redoing ABORTED_TXNS, and checks the outputs and the group's
    offsets. `after_commit(k)` runs after the k-th transaction committed; with it, the loop
    rides out what a node failure makes clients report (retriable errors are retried, a
    transaction that must be aborted is aborted and redone), without it any error fails."""
    group = f"txn-ctp-{run}"
    inputs = [f"in-{i}" for i in range(INPUT_RECORDS)]
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                      "log_level": 2})
    _produce_each(plain, source, inputs, n)

    group_conf = {"group.protocol": "consumer"} if protocol == "consumer" else {"session.timeout.ms": 10000}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "log_level": 2, "log.connection.close": False,
                         **group_conf})
    txn_conf = {"transaction.timeout.ms": 30000}
    producer = _txn_producer(bootstrap, f"txn-ctp-{run}", **txn_conf)
    consumer.subscribe([source])
    recovered: list[str] = []  # errors ridden out

    def attempt(what: str, call: Callable[[], object]):
        """`call()`, retried on retriable errors for 30s; None when the transaction must be
        aborted. Without after_commit every error fails the test."""
        until = time.monotonic() + 30
        while True:
            try:
                return call()
            except KafkaException as e:
                err = e.args[0]
                if after_commit is None or err.fatal():
                    raise
                recovered.append(f"{what}: {err}")
                if err.txn_requires_abort():
                    return None
                if not err.retriable() or time.monotonic() > until:
                    raise
                time.sleep(0.2)

    def rewind() -> None:
        """Seek back to what the group committed, as an application does after an abort."""
        committed = attempt("committed", lambda: consumer.committed(consumer.assignment(), timeout=10))
        for tp in committed or []:
            consumer.seek(TopicPartition(source, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))

    copied = transactions = aborted_records = 0
    deadline = time.monotonic() + 180
    last_batch = time.monotonic()
    try:
        while copied < INPUT_RECORDS:
            assert time.monotonic() < deadline, (f"copied {copied}/{INPUT_RECORDS} in 180s "
                                                 f"({transactions} transactions)")
            batch = consumer.consume(num_messages=500, timeout=0.5)
            errors = [m.error() for m in batch if m.error()]
            batch = [m for m in batch if not m.error()]
            for err in errors:
                if after_commit is None or err.fatal():
                    pytest.fail(f"consume error: {err}", pytrace=False)
                recovered.append(f"consume: {err}")
            if not batch:
                assert time.monotonic() - last_batch < 20, (
                    f"nothing more to read for 20s with {copied}/{INPUT_RECORDS} copied "
                    f"({transactions} transactions; errors ridden out: {recovered[-5:]})")
                continue
            last_batch = time.monotonic()
            attempt("begin", producer.begin_transaction)
            positions: dict[int, int] = {}
            for m in batch:
                while True:
                    try:
                        producer.produce(sink, value=b"out-" + m.value(), partition=m.partition())
                        break
                    except BufferError:
                        producer.poll(0.1)
                positions[m.partition()] = m.offset() + 1
            transactions += 1
            offsets = [TopicPartition(source, part, off) for part, off in positions.items()]
            try:
                ok = attempt("send_offsets", lambda: _bounded(lambda: producer.send_offsets_to_transaction(
                    offsets, consumer.consumer_group_metadata(), 20) or True, 60))
            except _Wedged as wedged:
                if after_commit is None:
                    pytest.fail(f"send_offsets_to_transaction: {wedged}", pytrace=False)
                # What an application does with a stuck producer: a new one with the same
                # transactional.id fences it, and the coordinator aborts its open transaction.
                recovered.append(f"send_offsets: {wedged}; a new producer fenced the wedged one")
                producer = _txn_producer(bootstrap, f"txn-ctp-{run}", **txn_conf)
                aborted_records += len(batch)
                rewind()
                continue
            if ok and transactions not in ABORTED_TXNS:
                ok = attempt("commit", lambda: producer.commit_transaction(20) or True)
                if ok:
                    copied += len(batch)
                    # Once the commit returned, the group's offsets are the transaction's (a
                    # read_committed consumer asks with require_stable, so none are pending).
                    now = attempt("committed", lambda: consumer.committed(
                        [TopicPartition(source, part) for part in positions], timeout=10))
                    now = {tp.partition: tp.offset for tp in now}
                    assert now == positions, (f"offsets fetched right after commit {now}, "
                                              f"the transaction committed {positions}")
                    if after_commit is not None:
                        after_commit(transactions)
                    continue
            if ok:
                # A planned abort: the records reach the log first, so readers must skip them.
                assert producer.flush(20) == 0
            attempt("abort", lambda: producer.abort_transaction(20))
            aborted_records += len(batch)
            rewind()
    finally:
        consumer.close()
    assert copied == INPUT_RECORDS, f"{copied} records copied in committed transactions"
    assert aborted_records > 0, "the loop aborted transactions with records in them"
    if recovered:
        print(f"{len(recovered)} errors ridden out, e.g. {recovered[:8]}")

    outputs = drain(bootstrap, sink, "read_committed", timeout=60)
    flat = _flat(outputs)
    dupes = [v for v, k in Counter(flat).items() if k > 1]
    assert not dupes, f"{len(dupes)} outputs written more than once, e.g. {dupes[:5]}"
    assert len(flat) == INPUT_RECORDS, f"{len(flat)} outputs for {INPUT_RECORDS} inputs"
    # Each input partition's records come out in its order on the same output partition.
    assert outputs == {p: [f"out-{v}" for v in vs] for p, vs in _split(inputs, n).items()}
    every = _flat(drain(bootstrap, sink, "read_uncommitted", timeout=60))
    # (A transaction a failure aborted may have failed before its records were written.)
    assert len(every) == INPUT_RECORDS + aborted_records or (after_commit and len(every) > INPUT_RECORDS), \
        f"the log holds {len(every)} outputs: {INPUT_RECORDS} committed and {aborted_records} aborted expected"

    # The group's committed offsets are the input's end offsets.
    check = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 2})
    try:
        committed = check.committed([TopicPartition(source, part) for part in range(n)], timeout=10)
        ends = {part: check.get_watermark_offsets(TopicPartition(source, part), timeout=10)[1] for part in range(n)}
    finally:
        check.close()
    assert {tp.partition: tp.offset for tp in committed} == ends == {
        part: len(vs) for part, vs in _split(inputs, n).items()}


@pytest.mark.timeout(120)
def test_confluent_killed_producer_is_aborted_after_its_timeout(broker, admin, tmp_path):
    _needs_broker(broker)
    timeout_ms = 5000
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    max_timeout = int(admin.describe_configs([res])[res].result(timeout=10)["transaction.max.timeout.ms"].value)
    assert max_timeout >= timeout_ms, f"transaction.max.timeout.ms {max_timeout} refuses {timeout_ms}"

    run = _run_id()
    topic = f"txn-kill-{run}"
    n = create_topic(broker, admin, topic, partitions=2)
    before = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "log_level": 2})
    _produce_each(before, topic, [f"before-{i}" for i in range(4)], n)

    err = tmp_path / "hang.err"
    with err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, str(matrix.CLIENTS_DIR / "txn_hang.py"),
                                 "--bootstrap", broker.bootstrap, "--topic", topic, "--txn-id", f"txn-kill-{run}",
                                 "--count", "10", "--prefix", "hung", "--timeout-ms", str(timeout_ms)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=e)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("sent 10"), (f"the hanging producer did not send (exit {proc.poll()}): "
                                            f"{line!r} {err.read_text(errors='replace')[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    _produce_each(before, topic, [f"after-{i}" for i in range(4)], n)
    # The open transaction holds the last stable offset at its first record.
    assert _flat(drain(broker.bootstrap, topic, "read_committed")) == ["before-0", "before-2", "before-1",
                                                                        "before-3"]
    everything = _flat(drain(broker.bootstrap, topic, "read_uncommitted"))
    assert sum(v.startswith("hung-") for v in everything) == 10, everything

    # The coordinator aborts it once transaction.timeout.ms passed; then what followed is read.
    expected = _merge(_split([f"before-{i}" for i in range(4)], n), _split([f"after-{i}" for i in range(4)], n))
    deadline = killed_at + 40
    while True:
        got = drain(broker.bootstrap, topic, "read_committed")
        assert not [v for v in _flat(got) if v.startswith("hung-")], f"read_committed saw the killed producer's: {got}"
        if got == expected:
            break
        assert time.monotonic() < deadline, f"40s after the kill read_committed reads only {got}"
        time.sleep(0.5)
    waited = time.monotonic() - killed_at
    assert waited >= timeout_ms / 1000 - 1, f"aborted after {waited:.1f}s, before transaction.timeout.ms"
    print(f"killed producer's transaction aborted, LSO moved on {waited:.1f}s after the kill")


@pytest.mark.timeout(90)
def test_confluent_new_producer_fences_the_old_one(broker, admin):
    _needs_broker(broker)
    run = _run_id()
    topic = f"txn-fence-{run}"
    n = create_topic(broker, admin, topic, partitions=2)
    txn_id = f"txn-fence-{run}"
    old = _txn_producer(broker.bootstrap, txn_id)
    old.begin_transaction()
    _produce_each(old, topic, [f"old-{i}" for i in range(6)], n)

    new = _txn_producer(broker.bootstrap, txn_id)  # fences `old`, aborting its transaction
    with pytest.raises(KafkaException) as raised:
        old.commit_transaction(20)
    error = raised.value.args[0]
    assert error.code() in FENCED and error.fatal(), f"the fenced producer's commit failed with {error!r}"
    # Everything it tries afterwards fails too.
    with pytest.raises(KafkaException):
        old.begin_transaction()

    c = txn_with(new, topic, [f"new-{i}" for i in range(6)], n)
    assert drain(broker.bootstrap, topic, "read_committed") == c, "only the new producer's transaction"
    assert sum(v.startswith("old-") for v in _flat(drain(broker.bootstrap, topic, "read_uncommitted"))) == 6


@pytest.mark.timeout(120)
def test_kafkajs_transactions(broker, admin):
    _needs_broker(broker)
    run = _run_id()
    topic, offsets_topic, group = f"txn-js-{run}", f"txn-js-in-{run}", f"txn-js-{run}"
    create_topic(broker, admin, topic, partitions=1)
    create_topic(broker, admin, offsets_topic, partitions=1)
    r = subprocess.run(["node", str(matrix.CLIENTS_DIR / "kafkajs_txn.js"), "--bootstrap", broker.bootstrap,
                        "--topic", topic, "--offsets-topic", offsets_topic, "--group", group,
                        "--txn-id", f"txn-js-{run}", "--prefix", "js", "--timeout", "90"],
                       capture_output=True, timeout=105, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"kafkajs_txn.js exited {r.returncode}: {r.stderr.decode(errors='replace')[-3000:]}"
    steps = {s["step"]: s for s in map(json.loads, r.stdout.decode().splitlines())}
    committed, aborted = steps["produced"]["committed"], steps["produced"]["aborted"]
    assert steps["consumed"]["values"] == committed, "kafkajs's read_committed consumer: committed records only"
    assert steps["offsets"]["offsets"] == [{"partition": 0, "offset": "20"}], \
        "the group's offset is the last committed transaction's, not the aborted one's"
    assert drain(broker.bootstrap, topic, "read_committed") == {0: committed}
    assert drain(broker.bootstrap, topic, "read_uncommitted") == {0: committed[:10] + aborted + committed[10:]}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_java_consume_transform_produce(broker, admin, protocol):
    _needs_broker(broker)
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    run = _run_id()
    source, sink, group = f"txn-jin-{run}", f"txn-jout-{run}", f"txn-java-{run}"
    count = 10_000
    n = create_topic(broker, admin, source, partitions=3)
    create_topic(broker, admin, sink, partitions=3)
    inputs = [f"in-{i}" for i in range(count)]
    plain = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5,
                      "log_level": 2})
    _produce_each(plain, source, inputs, n)

    java = matrix.java_argv(matrix.JAVA_CLIENT_JAR)
    r = subprocess.run(java + ["txn-copy", "--bootstrap", broker.bootstrap, "--input", source, "--output", sink,
                               "--group", group, "--txn-id", f"txn-java-{run}", "--count", str(count),
                               "--abort-every", "3", "--group-protocol", protocol, "--timeout", "100"],
                       capture_output=True, timeout=130, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"txn-copy exited {r.returncode}: {r.stderr.decode(errors='replace')[-3000:]}"
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["copied"] == count and summary["aborted"] > 0, summary

    # Kafka's Java consumer with isolation.level=read_committed reads each input once ...
    read = _java_read_committed(broker.bootstrap, sink, count)
    expected = {p: [f"copy-{v}" for v in vs] for p, vs in _split(inputs, n).items()}
    assert read == expected, (f"{len(_flat(read))} records read, {len(set(_flat(read)))} distinct, for {count} "
                              f"inputs; each input once, in its partition's order, expected")
    # ... and so does librdkafka's.
    assert drain(broker.bootstrap, sink, "read_committed") == expected
    every = _flat(drain(broker.bootstrap, sink, "read_uncommitted"))
    assert len(every) > count, f"the aborted transactions' records are in the log ({len(every)} records)"

    check = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 2})
    try:
        committed = check.committed([TopicPartition(source, part) for part in range(n)], timeout=10)
    finally:
        check.close()
    assert {tp.partition: tp.offset for tp in committed} == {part: len(vs) for part, vs in _split(inputs, n).items()}

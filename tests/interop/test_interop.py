"""Cross-client interop: real Kafka clients against a real Strata broker, unchanged.

For every producer client x codec, one batch goes to a fresh 3-partition topic; every consumer
client then reads that topic back from the beginning (all consumers of one topic run in parallel,
once, and each test_consume cell judges one consumer). A consumer cell passes when:
  * the consumer printed exactly the produced records: same multiset of (key, value, headers);
  * within each partition offsets are strictly increasing, start at 0 and have no gaps;
  * records of one key stay in one partition, and each partition holds its records in the order
    they were produced;
  * timestamps are the producer's explicit CreateTime (or, for kcat, plausible wall-clock times);
  * every key sits at the same (partition, offset) as confluent-kafka saw it.
Cells that a client cannot take part in are skipped with the reason (clients/matrix.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import common
import matrix
from conftest import Broker, create_topic

N = int(os.environ.get("INTEROP_RECORDS", "20"))
PRODUCE_TIMEOUT_S = 20
CONSUME_TIMEOUT_S = 20
REFERENCE_CONSUMER = "confluent-kafka"


@dataclass
class Run:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    def describe(self, limit: int = 3000) -> str:
        err = self.stderr.strip()
        if len(err) > limit:
            err = "..." + err[-limit:]
        rc = "timeout" if self.returncode is None else self.returncode
        return f"exit={rc} after {self.seconds:.1f}s: {' '.join(self.argv[-12:])}\nstderr:\n{err}"


@dataclass
class Produced:
    producer: str
    codec: str
    topic: str
    prefix: str
    partitions: int
    run: Run | None = None
    started_ms: int = 0
    finished_ms: int = 0
    consumed: dict[str, Run] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.run is not None and self.run.returncode == 0


_PRODUCED: dict[tuple[str, str], Produced] = {}


def _start(argv: list[str], workdir: Path, name: str):
    out = open(workdir / f"{name}.out", "w+b")
    err = open(workdir / f"{name}.err", "w+b")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return proc, out, err, time.monotonic()


def _finish(argv, proc, out, err, started, hard_timeout: float) -> Run:
    try:
        rc = proc.wait(timeout=max(0.1, hard_timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        rc = None
    seconds = time.monotonic() - started
    out.seek(0)
    err.seek(0)
    run = Run(argv, rc, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"), seconds)
    out.close()
    err.close()
    return run


def _client_argv(name: str) -> list[str]:
    argv = matrix.CLIENTS[name].argv()
    if not Path(argv[-1]).exists():
        pytest.fail(f"{name} client program {argv[-1]} is missing (run tests/install-deps.sh)", pytrace=False)
    return argv


def produced(broker: Broker, admin, producer: str, codec: str) -> Produced:
    """Produce the batch for (producer, codec) once per session and read it back with every
    consumer (in parallel)."""
    key = (producer, codec)
    if key in _PRODUCED:
        return _PRODUCED[key]
    prefix = f"{producer}-{codec}"
    topic = f"interop-{producer}-{codec}-{uuid.uuid4().hex[:8]}"
    partitions = create_topic(broker, admin, topic, partitions=3)
    p = Produced(producer, codec, topic, prefix, partitions)
    _PRODUCED[key] = p
    workdir = Path(tempfile.mkdtemp(prefix=f"interop-{prefix}-"))
    argv = _client_argv(producer) + [
        "produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--codec", codec,
        "--count", str(N), "--prefix", prefix, "--timeout", str(PRODUCE_TIMEOUT_S)]
    p.started_ms = int(time.time() * 1000)
    p.run = _finish(argv, *_start(argv, workdir, "produce"), hard_timeout=PRODUCE_TIMEOUT_S + 30)
    p.finished_ms = int(time.time() * 1000)
    broker.check_alive()
    if not p.ok:
        return p
    procs = {}
    for name, client in matrix.CLIENTS.items():
        if codec in client.consume_skip:
            continue
        cargv = _client_argv(name) + [
            "consume", "--bootstrap", broker.bootstrap, "--topic", topic,
            "--count", str(N), "--timeout", str(CONSUME_TIMEOUT_S)]
        procs[name] = (cargv, *_start(cargv, workdir, f"consume-{name}"))
    for name, (cargv, *handles) in procs.items():
        p.consumed[name] = _finish(cargv, *handles, hard_timeout=CONSUME_TIMEOUT_S + 25)
    broker.check_alive()
    return p


def _skip_reason_produce(producer: str, codec: str) -> str | None:
    return matrix.CLIENTS[producer].produce_skip.get(codec)


PRODUCE_CELLS = [pytest.param(p, c, id=f"{p}-{c}") for p in matrix.NAMES for c in common.CODECS]
CONSUME_CELLS = [pytest.param(p, c, r, id=f"{p}-{c}-to-{r}")
                 for p in matrix.NAMES for c in common.CODECS for r in matrix.NAMES]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("producer,codec", PRODUCE_CELLS)
def test_produce(broker, admin, producer, codec):
    reason = _skip_reason_produce(producer, codec)
    if reason:
        pytest.skip(f"{producer} cannot produce {codec}: {reason}")
    p = produced(broker, admin, producer, codec)
    assert p.ok, f"{producer} failed to produce {N} records with {codec} to {p.topic}\n{p.run.describe()}"


def _parse(run: Run) -> list[dict]:
    recs = []
    for line in run.stdout.splitlines():
        line = line.strip()
        if line:
            recs.append(json.loads(line))
    return recs


def _index(key_hex: str) -> int:
    return int(bytes.fromhex(key_hex).rsplit(b"-", 1)[1])


@pytest.mark.timeout(150)
@pytest.mark.parametrize("producer,codec,consumer", CONSUME_CELLS)
def test_consume(broker, admin, producer, codec, consumer):
    reason = _skip_reason_produce(producer, codec)
    if reason:
        pytest.skip(f"{producer} cannot produce {codec}: {reason}")
    reason = matrix.CLIENTS[consumer].consume_skip.get(codec)
    if reason:
        pytest.skip(f"{consumer} cannot read {codec} topics: {reason}")
    p = produced(broker, admin, producer, codec)
    if not p.ok:
        pytest.skip(f"nothing to read: the {producer}/{codec} produce failed (see test_produce[{producer}-{codec}])")
    run = p.consumed[consumer]
    where = f"{consumer} reading {p.topic} ({producer}, {codec})"
    assert run.returncode == 0, f"{where} failed\n{run.describe()}"
    try:
        recs = _parse(run)
    except ValueError as e:
        pytest.fail(f"{where}: unparsable output ({e})\nstdout:\n{run.stdout[:2000]}", pytrace=False)

    # 1. Exactly the produced records.
    def as_tuple(r):
        return (r["key"], r["value"], tuple((h[0], h[1]) for h in r["headers"]))

    expected = Counter(
        (common.record_key(p.prefix, i).hex(), common.record_value(p.prefix, i).hex(),
         tuple((n, v.hex()) for n, v in matrix.expected_headers(producer, p.prefix, i)))
        for i in range(N))
    got = Counter(as_tuple(r) for r in recs)
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (
        f"{where}: records differ: {sum(missing.values())} missing, {sum(extra.values())} unexpected\n"
        f"missing (first 3): {list(missing)[:3]}\nunexpected (first 3): {list(extra)[:3]}")

    # 2. Offsets per partition: strictly increasing in delivery order, from 0, no gaps.
    by_part: dict[int, list[dict]] = defaultdict(list)
    for r in recs:
        by_part[r["partition"]].append(r)
    for part, rs in sorted(by_part.items()):
        offs = [r["offset"] for r in rs]
        assert all(a < b for a, b in zip(offs, offs[1:])), f"{where}: partition {part} offsets not increasing: {offs}"
        assert offs == list(range(len(offs))), f"{where}: partition {part} offsets not 0..{len(offs) - 1}: {offs}"
        assert 0 <= part < p.partitions, f"{where}: partition {part} outside 0..{p.partitions - 1}"

    # 3. One partition per key, production order within a partition.
    parts_of_key: dict[str, set[int]] = defaultdict(set)
    for r in recs:
        parts_of_key[r["key"]].add(r["partition"])
    split = {bytes.fromhex(k).decode(): v for k, v in parts_of_key.items() if len(v) > 1}
    assert not split, f"{where}: keys spread over several partitions: {split}"
    for part, rs in sorted(by_part.items()):
        order = [_index(r["key"]) for r in rs]
        assert order == sorted(order), f"{where}: partition {part} not in production order: {order}"

    # 4. Timestamps.
    if matrix.CLIENTS[producer].explicit_timestamps:
        wrong = [(r["key"], r["timestamp"]) for r in recs if r["timestamp"] != common.record_timestamp(_index(r["key"]))]
        assert not wrong, f"{where}: timestamps differ from the producer's CreateTime (first 3): {wrong[:3]}"
    else:
        lo, hi = p.started_ms - 60_000, p.finished_ms + 60_000
        wrong = [r["timestamp"] for r in recs if not lo <= r["timestamp"] <= hi]
        assert not wrong, f"{where}: timestamps outside the produce window {lo}..{hi}: {wrong[:3]}"

    # 5. Same placement as the reference consumer saw.
    if consumer != REFERENCE_CONSUMER:
        ref = p.consumed.get(REFERENCE_CONSUMER)
        if ref is not None and ref.returncode == 0:
            ref_pos = {r["key"]: (r["partition"], r["offset"]) for r in _parse(ref)}
            pos = {r["key"]: (r["partition"], r["offset"]) for r in recs}
            diff = {bytes.fromhex(k).decode(): (pos[k], ref_pos.get(k)) for k in pos if pos[k] != ref_pos.get(k)}
            assert not diff, f"{where}: (partition, offset) differ from {REFERENCE_CONSUMER}'s view: {diff}"


@pytest.mark.timeout(60)
def test_kcat_metadata_listing(broker, admin):
    topic = f"interop-metadata-{uuid.uuid4().hex[:8]}"
    partitions = create_topic(broker, admin, topic, partitions=3)
    r = subprocess.run(["kcat", "-L", "-b", broker.bootstrap, "-t", topic, "-J", "-m", "10"],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"kcat -L -J exited {r.returncode}: {r.stderr.decode(errors='replace')}"
    md = json.loads(r.stdout)
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    if broker.is_mock:
        assert broker.bootstrap in brokers.values(), md["brokers"]
    else:
        assert brokers == {1: broker.bootstrap}, f"brokers in metadata: {md['brokers']}"
    [t] = md["topics"]
    assert t["topic"] == topic and "error" not in t, t
    assert len(t["partitions"]) == partitions, t
    node = next(i for i, n in brokers.items() if n == broker.bootstrap)
    for part in t["partitions"]:
        assert part["leader"] == node, part
        assert [x["id"] for x in part["replicas"]] == [node], part
        assert [x["id"] for x in part["isrs"]] == [node], part
    assert sorted(part["partition"] for part in t["partitions"]) == list(range(partitions))

    # The plain listing of the whole cluster shows the broker and the topic.
    r = subprocess.run(["kcat", "-L", "-b", broker.bootstrap, "-m", "10"],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"kcat -L exited {r.returncode}: {r.stderr.decode(errors='replace')}"
    assert f"broker {node} at {broker.bootstrap}" in out, out
    assert f'topic "{topic}" with {partitions} partitions' in out, out


@pytest.mark.timeout(60)
def test_zstd_in_produce_below_v7_is_refused_like_kafka(broker, admin):
    """The sarama x zstd cells are skipped because Kafka refuses them (KIP-110: zstd batches need
    Produce v7+, and Kafka answers older versions with UNSUPPORTED_COMPRESSION_TYPE instead of
    storing batches that the old client's consumers could not read). Check the broker does too."""
    if broker.is_mock:
        pytest.skip("librdkafka's mock broker does not check compression against the request version")
    topic = f"interop-sarama-zstd-{uuid.uuid4().hex[:8]}"
    create_topic(broker, admin, topic, partitions=3)
    argv = _client_argv("sarama") + ["produce", "--bootstrap", broker.bootstrap, "--topic", topic,
                                     "--codec", "zstd", "--count", "3", "--prefix", "sarama-zstd",
                                     "--timeout", "15"]
    r = subprocess.run(argv, capture_output=True, timeout=45, stdin=subprocess.DEVNULL)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, (
        "the broker accepted zstd batches in Produce v3 (sarama 1.22.1); Kafka answers "
        f"UNSUPPORTED_COMPRESSION_TYPE (error 76) below Produce v7\n{r.stdout.decode(errors='replace')}")
    assert "compression" in err.lower(), f"expected UNSUPPORTED_COMPRESSION_TYPE, got: {err}"


@pytest.mark.timeout(90)
def test_auto_created_topic_roundtrip(broker):
    """A producer naming a topic that does not exist gets it auto-created (the broker's default),
    and another client reads it back."""
    topic = f"interop-auto-{uuid.uuid4().hex[:8]}"
    prefix = "auto"
    broker.check_alive()
    argv = _client_argv("confluent-kafka") + [
        "produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--codec", "none",
        "--count", "5", "--prefix", prefix, "--timeout", str(PRODUCE_TIMEOUT_S)]
    r = subprocess.run(argv, capture_output=True, timeout=PRODUCE_TIMEOUT_S + 30, stdin=subprocess.DEVNULL)
    broker.check_alive()
    assert r.returncode == 0, f"produce to the missing topic {topic} failed: {r.stderr.decode(errors='replace')[-3000:]}"
    argv = _client_argv("kcat") + ["consume", "--bootstrap", broker.bootstrap, "--topic", topic,
                                   "--count", "5", "--timeout", str(CONSUME_TIMEOUT_S)]
    r = subprocess.run(argv, capture_output=True, timeout=CONSUME_TIMEOUT_S + 25, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"kcat could not read the auto-created {topic}: {r.stderr.decode(errors='replace')[-3000:]}"
    got = sorted(bytes.fromhex(json.loads(line)["key"]) for line in r.stdout.decode().splitlines() if line.strip())
    assert got == sorted(common.record_key(prefix, i) for i in range(5))

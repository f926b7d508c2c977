"""Consumer groups with real clients in separate processes: three members share a topic; one
is killed with SIGKILL and the others take over its partitions; with a commit after every
processed record nothing is skipped and nothing is processed twice except what the killed
member processed but had not committed. Classic-protocol groups with confluent-kafka,
kafka-python, kafkajs and Kafka's Java client; KIP-848 consumer-protocol groups (group.protocol=consumer) with
confluent-kafka and both of the broker's assignors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

import matrix
from conftest import INTEROP_DIR, create_topic, start_strata

MEMBERS = {
    "confluent-kafka": INTEROP_DIR / "clients" / "group_member.py",
    "kafka-python": INTEROP_DIR / "clients" / "group_member_kafka_python.py",
    "kafkajs": INTEROP_DIR / "clients" / "group_member_kafkajs.js",
    "java": matrix.JAVA_CLIENT_JAR,
}
SESSION_TIMEOUT_S = 6


def launcher(client: str) -> list[str]:
    script = str(MEMBERS[client])
    if not Path(script).exists():
        pytest.fail(f"{client} group member {script} is missing (run tests/install-deps.sh)", pytrace=False)
    if script.endswith(".jar"):
        return matrix.java_argv(Path(script)) + ["group-member"]
    return ["node", script] if script.endswith(".js") else [sys.executable, script]


def read_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by SIGKILL
    return out


def assignment(path: Path) -> list[int]:
    current: list[int] = []
    for e in read_lines(path):
        if "assigned" in e:
            current = sorted(set(current) | set(e["assigned"])) if e.get("incremental") else e["assigned"]
        elif "revoked" in e:
            current = [p for p in current if p not in e["revoked"]]
    return current


def produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, key=f"k{i}", value=f"v{i}")
    assert p.flush(30) == 0, "every record acknowledged"


def wait_for(what: str, condition, timeout_s: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}", pytrace=False)
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.timeout(180)
@pytest.mark.parametrize("client,assignor", [
    ("confluent-kafka", "range"),
    ("confluent-kafka", "cooperative-sticky"),
    ("kafka-python", "range"),
    ("kafkajs", "roundrobin"),  # kafkajs's own default assigner; --assignor is not passed on
    ("java", "cooperative-sticky"),
])
def test_killed_member_is_replaced_and_nothing_is_skipped(broker, admin, tmp_path, client, assignor):
    if broker.is_mock:
        pytest.skip("group failover is a broker property")
    member_args = ["--session-timeout-ms", str(SESSION_TIMEOUT_S * 1000), "--assignor", assignor]
    kill_a_member_and_check(broker, admin, tmp_path, client, member_args, SESSION_TIMEOUT_S)


@pytest.fixture(scope="module")
def consumer_protocol_broker(tmp_path_factory):
    """A broker of its own whose consumer-protocol sessions last SESSION_TIMEOUT_S."""
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("the consumer protocol's session timeout is a broker config")
    b = start_strata(tmp_path_factory.mktemp("kip848-broker"), {
        "group.consumer.session.timeout.ms": SESSION_TIMEOUT_S * 1000,
        "group.consumer.heartbeat.interval.ms": 500,
    })
    try:
        yield b
    finally:
        b.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_consumer_protocol_killed_member_is_replaced_and_nothing_is_skipped(
        consumer_protocol_broker, tmp_path, assignor):
    from confluent_kafka.admin import AdminClient
    broker = consumer_protocol_broker
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log.connection.close": False,
                         "log_level": 2})
    member_args = ["--group-protocol", "consumer", "--assignor", assignor]

    def described_by_the_broker(group: str) -> None:
        # ConsumerGroupDescribe (librdkafka's describe of consumer-protocol groups) and
        # ListGroups v5 see the group as a consumer group with its two survivors.
        from confluent_kafka import ConsumerGroupState, ConsumerGroupType

        def stable_with_two() -> bool:
            d = admin.describe_consumer_groups([group])[group].result(timeout=10)
            return d.state == ConsumerGroupState.STABLE and len(d.members) == 2
        wait_for("the group to be described as stable with two members", stable_with_two, 20)
        d = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert d.type == ConsumerGroupType.CONSUMER
        assert d.partition_assignor == assignor
        owned = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
        assert owned == list(range(6)), f"described assignment {owned}"
        listed = admin.list_consumer_groups().result(timeout=10).valid
        mine = [g for g in listed if g.group_id == group]
        assert mine and mine[0].type == ConsumerGroupType.CONSUMER, mine

    kill_a_member_and_check(broker, admin, tmp_path, "confluent-kafka", member_args, SESSION_TIMEOUT_S,
                            check_live_group=described_by_the_broker)


def kill_a_member_and_check(broker, admin, tmp_path, client, member_args, session_timeout_s,
                            check_live_group=None):
    """Three members of `client` share six partitions, one is killed, the rest take over."""
    topic = f"group-failover-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(broker, admin, topic, partitions=6)
    produce(broker.bootstrap, topic, 0, 600)
    outputs = [tmp_path / f"member-{i}.jsonl" for i in range(3)]
    members = []
    try:
        for out in outputs:
            members.append(subprocess.Popen(
                [*launcher(client), "--bootstrap", broker.bootstrap, "--topic", topic,
                 "--group", group, *member_args],
                stdout=out.open("w"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))

        def shared() -> bool:
            parts = [assignment(o) for o in outputs]
            return all(parts) and sorted(sum(parts, [])) == list(range(6))
        wait_for("three members to share six partitions", shared, 60)
        wait_for("the first 600 records to be processed",
                 lambda: sum(1 for o in outputs for e in read_lines(o) if "v" in e) >= 600, 60)

        victim_partitions = assignment(outputs[0])
        members[0].kill()
        members[0].wait(timeout=10)
        produce(broker.bootstrap, topic, 600, 600)
        took = wait_for("the survivors to take over every partition",
                        lambda: sorted(assignment(outputs[1]) + assignment(outputs[2])) == list(range(6)),
                        session_timeout_s + 15)
        if check_live_group is not None:
            check_live_group(group)
        wait_for("every record to be processed",
                 lambda: {e["v"] for o in outputs for e in read_lines(o) if "v" in e} >= {f"v{i}" for i in range(1200)},
                 60)
    finally:
        for m in members:
            if m.poll() is None:
                m.terminate()
        for m in members:
            try:
                m.wait(timeout=15)
            except subprocess.TimeoutExpired:
                m.kill()

    processed = [e for o in outputs for e in read_lines(o) if "v" in e]
    values = [e["v"] for e in processed]
    assert set(values) == {f"v{i}" for i in range(1200)}, "no record skipped"
    # Duplicates may only be what the killed member processed without committing: at most its
    # last record in each partition it held.
    victim = [e for e in read_lines(outputs[0]) if "v" in e]
    last_of_victim = {}
    for e in victim:
        last_of_victim[e["p"]] = max(last_of_victim.get(e["p"], -1), e["o"])
    seen: dict[tuple[int, int], int] = {}
    for e in processed:
        seen[(e["p"], e["o"])] = seen.get((e["p"], e["o"]), 0) + 1
    twice = {k for k, n in seen.items() if n > 1}
    allowed = {(p, o) for p, o in last_of_victim.items()}
    assert twice <= allowed, f"processed twice beyond the killed member's uncommitted records: {sorted(twice - allowed)}"
    assert took <= session_timeout_s + 15, f"takeover took {took:.1f}s"
    assert set(victim_partitions) <= set(range(6))

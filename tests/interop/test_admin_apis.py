"""Admin APIs that tools call, through kafka-python's KafkaAdminClient (an implementation of
the protocol independent of Strata's): describe_log_dirs (DescribeLogDirs),
describe_producers (DescribeProducers), describe_topic_partitions (DescribeTopicPartitions,
paginated), describe_features (ApiVersions v3+) and update_features (UpdateFeatures).
confluent-kafka's AdminClient has none of these (its describe_topics sends Metadata)."""

from __future__ import annotations

import pytest

from conftest import create_topic

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def kp_admin(broker):
    if broker.is_mock:
        pytest.skip("librdkafka's mock cluster serves none of these APIs")
    from kafka.admin import KafkaAdminClient
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    yield client
    client.close()


def test_log_dirs_producers_and_topic_partitions(broker, admin, kp_admin):
    from kafka import KafkaProducer, TopicPartition

    create_topic(broker, admin, "kp-admin-apis", partitions=3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    for i in range(5):
        producer.send("kp-admin-apis", b"value-%d" % i, partition=1)
    producer.flush(timeout=20)
    producer.close()

    dirs = kp_admin.describe_log_dirs()
    [entry] = dirs
    [log_dir] = entry["log_dirs"]
    assert log_dir["error_code"] == 0
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
    [topic] = [t for t in log_dir["topics"] if t["name"] == "kp-admin-apis"]
    sizes = {p["partition_index"]: p["partition_size"] for p in topic["partitions"]}
    assert sorted(sizes) == [0, 1, 2]
    assert sizes[1] > 0 and sizes[0] == 0 and sizes[2] == 0

    states = kp_admin.describe_producers([TopicPartition("kp-admin-apis", 1)])
    [(tp, state)] = list(states.items())
    [active] = state.active_producers
    assert active.producer_id >= 0 and active.producer_epoch == 0
    assert active.last_sequence == 4
    assert active.last_timestamp > 0

    page = kp_admin.describe_topic_partitions(["kp-admin-apis"], response_partition_limit=2)
    [described] = page["topics"]
    assert described["error_code"] == 0
    assert [p["partition_index"] for p in described["partitions"]] == [0, 1]
    assert page["next_cursor"] is not None
    assert page["next_cursor"]["topic_name"] == "kp-admin-apis"
    assert page["next_cursor"]["partition_index"] == 2


def test_features_are_described_and_checked(kp_admin):
    from kafka.errors import InvalidUpdateVersionError

    features = kp_admin.describe_features()
    assert features["metadata.version"]["supported"] == (7, 25)
    assert features["metadata.version"]["finalized"] == (25, 25)
    assert features["group.version"]["finalized"] == (1, 1)
    assert "finalized" not in features["transaction.version"]

    assert kp_admin.update_features({"metadata.version": 25}, validate_only=True) == {
        "metadata.version": "OK"}
    with pytest.raises(InvalidUpdateVersionError):
        kp_admin.update_features({"transaction.version": 3}, validate_only=True)

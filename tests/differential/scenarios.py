"""The differential scenarios: data only. Each scenario is a name and a list of steps
`(operation, arguments)`; the operations are the functions in ops.py. Every scenario runs once
against Apache Kafka and once against Strata and the two results are compared step by step.

In arguments, "$t" stands for the scenario's own topic (`d-<scenario>`), "$t2" for a second
one and "$g" for its own group (`dg-<scenario>`), so scenarios do not see each other's state.
A difference is keyed `<scenario>/<operation>` (`<operation>.2` for the second step with the
same operation, and so on); KNOWN.md lists the keys of the differences that are explained.
"""

T = "$t"
G = "$g"
TS = 1_700_000_000_000  # record timestamps of the offset-by-time scenarios

SCENARIOS: list[tuple[str, list[tuple[str, dict]]]] = [
    # ---------------------------------------------------------------- topics
    ("create-topic-ok", [
        ("create_topics", {"topics": [{"name": T, "partitions": 3, "replication_factor": 1}]}),
        ("metadata", {"names": [T]}),
    ]),
    ("create-topic-defaults", [
        ("create_topics", {"topics": [{"name": T}]}),
        ("metadata", {"names": [T]}),
    ]),
    ("create-topic-exists", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("create_topics.2", {"topics": [{"name": T, "partitions": 2, "replication_factor": 1}]}),
        ("metadata", {"names": [T]}),
    ]),
    ("create-topic-invalid-name", [
        ("create_topics", {"topics": [{"name": "bad/name", "partitions": 1, "replication_factor": 1},
                                      {"name": "a" * 250, "partitions": 1, "replication_factor": 1},
                                      {"name": "..", "partitions": 1, "replication_factor": 1}]}),
    ]),
    ("create-topic-invalid-partitions", [
        ("create_topics", {"topics": [{"name": T, "partitions": 0, "replication_factor": 1}]}),
        ("metadata", {"names": [T]}),
    ]),
    ("create-topic-invalid-replication", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 3}]}),
        ("create_topics.2", {"topics": [{"name": "$t2", "partitions": 1, "replication_factor": 0}]}),
    ]),
    ("create-topic-bad-config", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"retention.ms": "soon"}}]}),
        ("create_topics.2", {"topics": [{"name": "$t2", "partitions": 1, "replication_factor": 1,
                                         "config": {"no.such.config": "1"}}]}),
        ("create_topics.3", {"topics": [{"name": "$t3", "partitions": 1, "replication_factor": 1,
                                         "config": {"cleanup.policy": "shred"}}]}),
    ]),
    ("create-topic-validate-only", [
        ("create_topics", {"topics": [{"name": T, "partitions": 2, "replication_factor": 1}],
                           "validate_only": True}),
        ("metadata", {"names": [T]}),
    ]),
    ("create-topic-internal-name", [
        # The brokers' group coordinators have made __consumer_offsets before any scenario runs.
        ("create_topics", {"topics": [{"name": "__consumer_offsets", "partitions": 1, "replication_factor": 1}]}),
    ]),
    ("delete-topic", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("delete_topics", {"names": [T]}),
        ("await_metadata", {"name": T, "partitions": 0}),
        ("delete_topics.2", {"names": [T]}),
    ]),
    ("delete-topic-unknown", [
        ("delete_topics", {"names": [T]}),
    ]),
    ("create-partitions", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("create_partitions", {"name": T, "total": 3}),
        ("await_metadata", {"name": T, "partitions": 3}),
        ("create_partitions.2", {"name": T, "total": 2}),
        ("create_partitions.3", {"name": T, "total": 3}),
        ("create_partitions.4", {"name": "$t2", "total": 3}),
    ]),
    ("metadata-unknown-topic", [
        ("metadata", {"names": [T]}),
        ("metadata.2", {"names": [T], "version": 4, "auto_create": True}),
    ]),
    # ---------------------------------------------------------------- configs
    ("describe-configs", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"retention.ms": "3600000", "cleanup.policy": "compact"}}]}),
        ("describe_configs", {"name": T, "keys": ["retention.ms", "cleanup.policy", "segment.bytes",
                                                 "max.message.bytes", "min.insync.replicas",
                                                 "message.timestamp.type", "compression.type",
                                                 "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
                                                 "segment.ms", "delete.retention.ms"]}),
        ("config_names", {"name": T}),
        ("describe_configs.2", {"name": "$t2", "keys": ["retention.ms"]}),
    ]),
    ("alter-configs", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("alter_configs", {"name": T, "set": {"retention.ms": 1000, "segment.bytes": 1048576}}),
        ("describe_configs", {"name": T, "keys": ["retention.ms", "segment.bytes"]}),
        ("alter_configs.2", {"name": T, "delete": ["retention.ms"]}),
        ("describe_configs.2", {"name": T, "keys": ["retention.ms", "segment.bytes"]}),
    ]),
    ("alter-configs-invalid", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("alter_configs", {"name": T, "set": {"retention.ms": "forever"}}),
        ("alter_configs.2", {"name": T, "set": {"no.such.config": "1"}}),
        ("alter_configs.3", {"name": T, "set": {"min.insync.replicas": 0}}),
        ("alter_configs.4", {"name": "$t2", "set": {"retention.ms": 1000}}),
        ("alter_configs.5", {"name": T, "set": {"retention.ms": 5}, "validate_only": True}),
        ("describe_configs", {"name": T, "keys": ["retention.ms", "min.insync.replicas"]}),
    ]),
    ("describe-broker-configs", [
        ("describe_broker_configs", {"keys": ["auto.create.topics.enable", "num.partitions", "log.retention.hours",
                                              "message.max.bytes", "log.segment.bytes"]}),
    ]),
    # ---------------------------------------------------------------- produce
    ("produce-acks", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("produce", {"topic": T, "acks": 1, "records": 3}),
        ("produce.2", {"topic": T, "acks": -1, "records": 2}),
        ("produce.3", {"topic": T, "acks": 0, "records": 4}),
        ("list_offsets", {"topic": T, "spec": "latest"}),
        ("fetch", {"topic": T, "offset": 0}),
    ]),
    ("produce-invalid-acks", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("produce", {"topic": T, "acks": 2, "records": 1}),
    ]),
    ("produce-unknown-topic", [
        ("produce", {"topic": T, "acks": 1, "records": 1}),
        ("metadata", {"names": [T]}),
    ]),
    ("produce-unknown-partition", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("produce", {"topic": T, "partition": 5, "acks": 1, "records": 1}),
    ]),
    ("produce-too-large", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"max.message.bytes": "1000"}}]}),
        ("produce", {"topic": T, "acks": 1, "records": 1, "value_size": 2000}),
        ("produce.2", {"topic": T, "acks": 1, "records": 1, "value_size": 100}),
    ]),
    ("produce-compacted-keyless", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"cleanup.policy": "compact"}}]}),
        ("produce", {"topic": T, "acks": 1, "records": 2, "keyless": True}),
        ("produce.2", {"topic": T, "acks": 1, "records": 2}),
    ]),
    ("produce-min-insync", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"min.insync.replicas": "2"}}]}),
        ("produce", {"topic": T, "acks": -1, "records": 1}),
        ("produce.2", {"topic": T, "acks": 1, "records": 1}),
        ("list_offsets", {"topic": T, "spec": "latest"}),
    ]),
    ("produce-timestamps", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1,
                                       "config": {"message.timestamp.before.max.ms": "86400000"}}]}),
        ("produce", {"topic": T, "acks": 1, "records": 1, "timestamp_ms": 1_000}),
        ("produce.2", {"topic": T, "acks": 1, "records": 1, "timestamp_ms": None}),
        ("produce.3", {"topic": T, "acks": 1, "records": 1, "timestamp_ms": 4_102_444_800_000}),
        ("alter_configs", {"name": T, "set": {"message.timestamp.after.max.ms": "3600000"}}),
        ("produce.4", {"topic": T, "acks": 1, "records": 1, "timestamp_ms": 4_102_444_800_000}),
    ]),
    ("produce-internal-topic", [
        ("find_coordinator", {"key": G}),
        ("produce", {"topic": "__consumer_offsets", "acks": 1, "records": 1}),
    ]),
    # ---------------------------------------------------------------- fetch
    ("fetch-positions", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("produce", {"topic": T, "acks": -1, "records": 5}),
        ("fetch", {"topic": T, "offset": 0}),
        ("fetch.2", {"topic": T, "offset": 3}),
        ("fetch.3", {"topic": T, "offset": 5}),
        ("fetch.4", {"topic": T, "offset": 6}),
        ("fetch.5", {"topic": T, "offset": -1}),
    ]),
    ("fetch-unknown", [
        ("fetch", {"topic": T, "offset": 0}),
        ("create_topics", {"topics": [{"name": "$t2", "partitions": 1, "replication_factor": 1}]}),
        ("fetch.2", {"topic": "$t2", "partition": 3, "offset": 0}),
    ]),
    # ---------------------------------------------------------------- offsets
    ("list-offsets", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("list_offsets", {"topic": T, "spec": "earliest"}),
        ("list_offsets.2", {"topic": T, "spec": "latest"}),
        ("list_offsets.3", {"topic": T, "spec": "max_timestamp"}),
        ("produce", {"topic": T, "acks": -1, "timestamps": [TS + 10, TS + 30, TS + 20]}),
        ("list_offsets.4", {"topic": T, "spec": "earliest"}),
        ("list_offsets.5", {"topic": T, "spec": "latest"}),
        ("list_offsets.6", {"topic": T, "spec": "max_timestamp"}),
        ("list_offsets.7", {"topic": T, "spec": TS + 15}),
        ("list_offsets.8", {"topic": T, "spec": TS + 30}),
        ("list_offsets.9", {"topic": T, "spec": TS + 31}),
        ("list_offsets_raw", {"topic": T, "timestamp": TS}),
        ("list_offsets_raw.2", {"topic": T, "timestamp": -3}),
        ("list_offsets_raw.3", {"topic": T, "partition": 9, "timestamp": -1}),
        ("list_offsets_raw.4", {"topic": "$t2", "timestamp": -1}),
    ]),
    ("delete-records", [
        ("create_topics", {"topics": [{"name": T, "partitions": 1, "replication_factor": 1}]}),
        ("produce", {"topic": T, "acks": -1, "records": 5}),
        ("delete_records", {"topic": T, "before": 2}),
        ("list_offsets", {"topic": T, "spec": "earliest"}),
        ("fetch", {"topic": T, "offset": 0}),
        ("fetch.2", {"topic": T, "offset": 2}),
        ("delete_records.2", {"topic": T, "before": 1}),
        ("delete_records.3", {"topic": T, "before": 9}),
        ("delete_records.4", {"topic": T, "before": -1}),
        ("list_offsets.2", {"topic": T, "spec": "earliest"}),
        ("delete_records.5", {"topic": "$t2", "before": 1}),
    ]),
    # ---------------------------------------------------------------- groups
    ("find-coordinator", [
        ("find_coordinator", {"key": G}),
        ("find_coordinator.2", {"key": G, "version": 3}),
        ("find_coordinator.3", {"key": "txn-" + G, "key_type": 1}),
    ]),
    ("simple-group-offsets", [
        ("create_topics", {"topics": [{"name": T, "partitions": 2, "replication_factor": 1}]}),
        ("produce", {"topic": T, "acks": -1, "records": 5}),
        ("commit_offsets", {"group": G, "offsets": [[T, 0, 3], [T, 1, 0]]}),
        ("fetch_offsets", {"group": G}),
        ("fetch_offsets.2", {"group": G, "partitions": [[T, 0], [T, 1], ["$t2", 0]]}),
        ("commit_raw", {"group": G, "topic": T, "partition": 0, "offset": 4}),
        ("commit_raw.2", {"group": G, "topic": "$t2", "partition": 0, "offset": 1}),
        ("commit_raw.3", {"group": G, "topic": T, "partition": 0, "offset": 4, "generation": 5, "member": "m"}),
        ("fetch_offsets.3", {"group": G}),
        ("describe_group", {"group": G}),
        ("list_groups", {"prefix": G}),
        ("delete_groups", {"groups": [G]}),
        ("fetch_offsets.4", {"group": G}),
        ("list_groups.2", {"prefix": G}),
    ]),
    ("unknown-group", [
        ("fetch_offsets", {"group": G}),
        ("describe_group", {"group": G}),
        ("delete_groups", {"groups": [G]}),
        ("sync_unknown", {"group": G}),
    ]),
    ("join-sync-group", [
        ("join_sync", {"group": G, "then": ["heartbeat", "stale_heartbeat", "unknown_heartbeat", "leave"]}),
        ("describe_group", {"group": G}),
        ("delete_groups", {"groups": [G]}),
        ("join_sync.2", {"group": G, "then": ["leave"]}),
        ("describe_group.2", {"group": G}),
        ("delete_groups.2", {"groups": [G]}),
    ]),
    ("join-group-invalid", [
        ("join_sync", {"group": G, "protocol_type": "", "protocols": ["range"]}),
        ("join_sync.2", {"group": G + "-2", "session_timeout_ms": 1}),
        ("join_sync.3", {"group": G + "-3", "protocols": []}),
    ]),
    ("join-group-protocol-mismatch", [
        ("join_sync", {"group": G, "protocols": ["range"], "then": []}),
        ("join_sync.2", {"group": G, "protocol_type": "connect", "protocols": ["range"], "then": []}),
        ("join_sync.3", {"group": G + "-2", "sync_protocol": "roundrobin", "then": []}),
    ]),
    ("consumer-group", [
        ("create_topics", {"topics": [{"name": T, "partitions": 2, "replication_factor": 1}]}),
        ("produce", {"topic": T, "partition": 0, "acks": -1, "records": 3}),
        ("produce.2", {"topic": T, "partition": 1, "acks": -1, "records": 2}),
        ("consume_group", {"group": G, "topic": T, "expect": 5}),
        ("describe_group", {"group": G}),
        ("list_groups", {"prefix": G}),
        ("fetch_offsets", {"group": G}),
        ("delete_groups", {"groups": [G]}),
    ]),
    ("delete-group-nonempty", [
        ("join_sync", {"group": G, "then": []}),
        ("delete_groups", {"groups": [G]}),
    ]),
    # ---------------------------------------------------------------- protocol
    ("api-versions", [
        ("api_versions", {"version": 0}),
        ("api_versions.2", {"version": 99}),
        ("api_key_set", {}),
    ]),
]

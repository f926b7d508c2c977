"""The operations a scenario is made of. Each takes the target (`Target`: the broker's bootstrap
address and an admin client) and the step's arguments, and returns a plain, JSON-able value in
which everything that legitimately differs between two brokers (node ports, cluster ids,
timestamps, member ids, ordering, error message texts) is already normalised away. Errors are
returned as Kafka error names (`UNKNOWN_TOPIC_OR_PART`), never raised, so that an error is a
result to compare like any other."""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass, field

import kafka.errors
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, OffsetSpec)

import raw

ADMIN_TIMEOUT_S = 20


@dataclass
class Target:
    """One broker under test, as the operations see it."""
    kind: str
    bootstrap: str
    admin: AdminClient = field(init=False)

    def __post_init__(self):
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2,
                                  "log.connection.close": False})


def err_name(code: int) -> str:
    """Kafka's name of a protocol error code (`NONE` for 0)."""
    if code == 0:
        return "NONE"
    name = KafkaError(code).name()
    return name if not name.startswith("Err-") else f"CODE_{code}"


def exc_name(e: BaseException) -> str:
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        return e.args[0].name()
    return type(e).__name__


def _result(future, timeout=ADMIN_TIMEOUT_S):
    try:
        v = future.result(timeout=timeout)
        return "NONE" if v is None else v
    except Exception as e:  # noqa: BLE001
        return exc_name(e)


# ------------------------------------------------------------------ topics

def create_topics(t: Target, topics: list[dict], validate_only: bool = False):
    new = [NewTopic(x["name"], num_partitions=x.get("partitions", -1),
                    replication_factor=x.get("replication_factor", -1), config=x.get("config", {}))
           for x in topics]
    futures = t.admin.create_topics(new, validate_only=validate_only, operation_timeout=10,
                                    request_timeout=ADMIN_TIMEOUT_S)
    out = {name: _result(f) for name, f in futures.items()}
    if not validate_only:
        for x in topics:
            if out[x["name"]] == "NONE":
                wait_topic(t, x["name"])
    return out


def wait_topic(t: Target, name: str, timeout_s: float = 15.0):
    """Until every partition of `name` has a leader in the broker's metadata."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = raw.call(t.bootstrap, "Metadata", 12, {"topics": [{"name": name}], "allow_auto_topic_creation": False,
                                                    "include_topic_authorized_operations": False})
        topic = md["topics"][0]
        if topic["error_code"] == 0 and topic["partitions"] and all(p["leader_id"] >= 0 for p in topic["partitions"]):
            # Kafka's replica takes leadership a moment after Metadata names the leader;
            # ListOffsets answers only from the leader.
            if all(list_offsets_raw(t, name, p["partition_index"])["error"] == "NONE" for p in topic["partitions"]):
                return
        time.sleep(0.1)
    raise AssertionError(f"{t.kind}: topic {name} has no leaders after {timeout_s}s")


def delete_topics(t: Target, names: list[str]):
    futures = t.admin.delete_topics(names, operation_timeout=10, request_timeout=ADMIN_TIMEOUT_S)
    return {name: _result(f) for name, f in futures.items()}


def create_partitions(t: Target, name: str, total: int, validate_only: bool = False):
    futures = t.admin.create_partitions([NewPartitions(name, total)], validate_only=validate_only,
                                        operation_timeout=10, request_timeout=ADMIN_TIMEOUT_S)
    return _result(futures[name])


def metadata(t: Target, names: list[str] | None, version: int = 12, auto_create: bool = False):
    """Raw Metadata: per topic its error, partition count, replica and ISR counts, leader epochs
    present; topics the request did not name are left out (other scenarios made them)."""
    body = {"topics": None if names is None else [{"name": n} for n in names],
            "allow_auto_topic_creation": auto_create, "include_topic_authorized_operations": False}
    md = raw.call(t.bootstrap, "Metadata", version, body)
    out = {}
    for topic in md["topics"]:
        if names is not None and topic["name"] not in names:
            continue
        out[topic["name"]] = {
            "error": err_name(topic["error_code"]),
            "internal": topic["is_internal"],
            "partitions": sorted((p["partition_index"], err_name(p["error_code"]), len(p["replica_nodes"]),
                                  len(p["isr_nodes"]), p["leader_id"] >= 0) for p in topic["partitions"]),
        }
    return {"brokers": len(md["brokers"]), "controller_known": md["controller_id"] >= 0, "topics": out}


def await_metadata(t: Target, name: str, partitions: int, timeout_s: float = 15.0):
    """Metadata of `name` once it shows `partitions` partitions, all with leaders (0: once the
    topic is gone), or as it is after `timeout_s`: deletions and new partitions reach a
    broker's metadata a moment after the admin call returns."""
    deadline = time.monotonic() + timeout_s
    while True:
        md = metadata(t, [name])
        topic = md["topics"].get(name, {"partitions": []})
        ready = len(topic["partitions"]) == partitions and all(p[4] for p in topic["partitions"])
        if ready or time.monotonic() > deadline:
            return md
        time.sleep(0.1)


# ------------------------------------------------------------------ configs

def _topic_configs(t: Target, name: str):
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    futures = t.admin.describe_configs([res], request_timeout=ADMIN_TIMEOUT_S)
    return futures[res].result(timeout=ADMIN_TIMEOUT_S)


def describe_configs(t: Target, name: str, keys: list[str]):
    """The named configs of a topic: value, source, read-only and sensitive flags."""
    try:
        configs = _topic_configs(t, name)
    except Exception as e:  # noqa: BLE001
        return exc_name(e)
    out = {}
    for k in keys:
        c = configs.get(k)
        out[k] = None if c is None else [c.value, c.source and ConfigSource_name(c.source), c.is_read_only,
                                         c.is_sensitive]
    return out


def ConfigSource_name(source) -> str:  # noqa: N802
    from confluent_kafka.admin import ConfigSource
    return ConfigSource(source).name


def config_names(t: Target, name: str):
    """The sorted names of every config DescribeConfigs returns for a topic."""
    try:
        return sorted(_topic_configs(t, name))
    except Exception as e:  # noqa: BLE001
        return exc_name(e)


def describe_broker_configs(t: Target, keys: list[str]):
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    try:
        configs = t.admin.describe_configs([res], request_timeout=ADMIN_TIMEOUT_S)[res].result(timeout=ADMIN_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001
        return exc_name(e)
    return {k: (None if configs.get(k) is None else [configs[k].value, ConfigSource_name(configs[k].source)])
            for k in keys}


def alter_configs(t: Target, name: str, set: dict | None = None, delete: list | None = None,  # noqa: A002
                  validate_only: bool = False, resource: str = "topic"):
    """IncrementalAlterConfigs on a topic (or the broker, resource="broker")."""
    entries = [ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET) for k, v in (set or {}).items()]
    entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in (delete or [])]
    kind = ConfigResource.Type.TOPIC if resource == "topic" else ConfigResource.Type.BROKER
    res = ConfigResource(kind, name, incremental_configs=entries)
    futures = t.admin.incremental_alter_configs([res], validate_only=validate_only, request_timeout=ADMIN_TIMEOUT_S)
    return _result(futures[res])


# ------------------------------------------------------------------ produce, fetch, offsets

def produce(t: Target, topic: str, partition: int = 0, acks: int = -1, records: int = 1,
            keyless: bool = False, value_size: int = 8, timestamp_ms: int | None = 1_700_000_000_000,
            timestamps: list[int] | None = None, version: int = 9):
    """Raw Produce of one batch of `records` records (key `k<i>`, value `value_size` bytes);
    with acks 0 there is no answer (None). Record timestamps are fixed (`timestamp_ms`, or one
    per record from `timestamps`, in separate batches) so that offset-by-time lookups are exact."""
    batches = []
    if timestamps:
        for i, ts in enumerate(timestamps):
            batches.append(raw.record_batch([(None if keyless else b"k%d" % i, b"v" * value_size)], ts))
    else:
        batches.append(raw.record_batch([(None if keyless else b"k%d" % i, b"v" * value_size) for i in range(records)],
                                        timestamp_ms))
    results = []
    for batch in batches:
        body = {"acks": acks, "timeout_ms": 5000, "transactional_id": None,
                "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]}
        with raw.Connection(t.bootstrap) as conn:
            resp = conn.call("Produce", version, body)
            if resp is None:
                # Nothing tells when an acks-0 batch is in; give it time before closing.
                time.sleep(0.5)
        if resp is None:
            results.append(None)
            continue
        p = resp["responses"][0]["partition_responses"][0]
        results.append({"error": err_name(p["error_code"]), "base_offset": p["base_offset"],
                        "log_start_offset": p["log_start_offset"],
                        "record_errors": sorted(e["batch_index"] for e in p["record_errors"] or [])})
    return results if len(results) > 1 else results[0]


def fetch(t: Target, topic: str, partition: int = 0, offset: int = 0, version: int = 12, max_wait_ms: int = 100):
    body = {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": 0, "max_bytes": 1 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
            "topics": [{"topic": topic, "partitions": [{"partition": partition, "fetch_offset": offset,
                                                          "partition_max_bytes": 1 << 20, "log_start_offset": -1,
                                                          "current_leader_epoch": -1}]}],
            "forgotten_topics_data": []}
    resp = raw.call(t.bootstrap, "Fetch", version, body)
    if resp["error_code"]:
        return err_name(resp["error_code"])
    p = resp["responses"][0]["partitions"][0]
    return {"error": err_name(p["error_code"]), "high_watermark": p["high_watermark"],
            "last_stable_offset": p["last_stable_offset"], "log_start_offset": p["log_start_offset"],
            "offsets": raw.count_records(p["records"])}


_SPECS = {"earliest": OffsetSpec.earliest, "latest": OffsetSpec.latest, "max_timestamp": OffsetSpec.max_timestamp}


def list_offsets(t: Target, topic: str, partition: int = 0, spec: str | int = "latest"):
    """Admin ListOffsets: the offset (and, for timestamp specs, the record timestamp) or the error."""
    tp = TopicPartition(topic, partition)
    s = _SPECS[spec]() if isinstance(spec, str) else OffsetSpec.for_timestamp(spec)
    try:
        r = t.admin.list_offsets({tp: s}, request_timeout=ADMIN_TIMEOUT_S)[tp].result(timeout=ADMIN_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001
        return exc_name(e)
    if isinstance(spec, str) and spec != "max_timestamp":
        return r.offset
    return [r.offset, r.timestamp]


def list_offsets_raw(t: Target, topic: str, partition: int = 0, timestamp: int = -1, version: int = 7):
    body = {"replica_id": -1, "isolation_level": 0,
            "topics": [{"name": topic, "partitions": [{"partition_index": partition, "timestamp": timestamp,
                                                        "current_leader_epoch": -1}]}]}
    p = raw.call(t.bootstrap, "ListOffsets", version, body)["topics"][0]["partitions"][0]
    return {"error": err_name(p["error_code"]), "offset": p["offset"], "timestamp": p["timestamp"]}


def delete_records(t: Target, topic: str, partition: int = 0, before: int = 0):
    tp = TopicPartition(topic, partition, before)
    try:
        r = t.admin.delete_records([tp], request_timeout=ADMIN_TIMEOUT_S)
        v = list(r.values())[0].result(timeout=ADMIN_TIMEOUT_S)
        return {"low_watermark": v.low_watermark}
    except Exception as e:  # noqa: BLE001
        return exc_name(e)


# ------------------------------------------------------------------ groups

_RETRY = (14, 15, 16)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


def find_coordinator(t: Target, key: str, key_type: int = 0, version: int = 4):
    """FindCoordinator; retried while the coordinator is loading or being created (Kafka creates
    __consumer_offsets on the first lookup)."""
    # Kafka creates __consumer_offsets and __transaction_state on the first lookup (the broker
    # fixtures make the first ones); a broker without a transaction coordinator answers
    # COORDINATOR_NOT_AVAILABLE for good, so transactional lookups wait less.
    deadline = time.monotonic() + (15 if key_type == 0 else 3)
    while True:
        if version >= 4:
            c = raw.call(t.bootstrap, "FindCoordinator", version, {"key_type": key_type, "coordinator_keys": [key]})
            c = c["coordinators"][0]
        else:
            c = raw.call(t.bootstrap, "FindCoordinator", version, {"key_type": key_type, "key": key})
        if c["error_code"] not in _RETRY or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {"error": err_name(c["error_code"]), "node_id": c["node_id"],
            "address_is_the_broker": f"{c['host']}:{c['port']}" == t.bootstrap}


def _group_call(t: Target, conn: raw.Connection, api: str, version: int, body: dict) -> dict:
    deadline = time.monotonic() + 15
    while True:
        r = conn.call(api, version, body)
        if r.get("error_code") not in _RETRY or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def _subscription(topic: str) -> bytes:
    """A consumer protocol subscription (v0) to one topic, as JoinGroup metadata."""
    name = topic.encode()
    return struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(">i", -1)


def _assignment(topic: str, partitions: list[int]) -> bytes:
    """A consumer protocol assignment (v0) of `partitions` of one topic."""
    name = topic.encode()
    return (struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(">i", len(partitions))
            + b"".join(struct.pack(">i", p) for p in partitions) + struct.pack(">i", -1))


def join_sync(t: Target, group: str, protocol_type: str = "consumer", protocols: list[str] = ("range",),
              session_timeout_ms: int = 10000, then: tuple[str, ...] = ("heartbeat", "leave"),
              topic: str = "none", sync_protocol: str | None = None):
    """One member through the classic group protocol over raw frames: JoinGroup v5 without a
    member id (MEMBER_ID_REQUIRED), again with the id it was given, SyncGroup as leader with an
    assignment (SyncGroup names the protocol type and the chosen protocol, or `sync_protocol`),
    then each of `then`: "heartbeat", "stale_heartbeat" (an old generation),
    "unknown_heartbeat" (a member id the group does not know), "leave"."""
    find_coordinator(t, group)
    out = {}
    with raw.Connection(t.bootstrap) as conn:
        body = {"group_id": group, "session_timeout_ms": session_timeout_ms, "rebalance_timeout_ms": 10000,
                "member_id": "", "group_instance_id": None, "protocol_type": protocol_type,
                "protocols": [{"name": p, "metadata": _subscription(topic)} for p in protocols]}
        r = _group_call(t, conn, "JoinGroup", 5, body)
        member = r["member_id"]
        out["join1"] = {"error": err_name(r["error_code"]), "member_id_given": bool(member)}
        if r["error_code"] == 79:
            body["member_id"] = member
            r = _group_call(t, conn, "JoinGroup", 5, body)
        out["join2"] = {"error": err_name(r["error_code"]), "generation": r["generation_id"],
                        "protocol": r["protocol_name"], "leader_is_me": r["leader"] == member and bool(member),
                        "members": [m["member_id"] == member for m in r["members"]],
                        "metadata": [bytes(m["metadata"]).hex() for m in r["members"]]}
        gen = r["generation_id"]
        if r["error_code"]:
            return out
        chosen = r["protocol_name"]
        r = _group_call(t, conn, "SyncGroup", 5, {"group_id": group, "generation_id": gen, "member_id": member,
                                                   "group_instance_id": None, "protocol_type": protocol_type,
                                                   "protocol_name": sync_protocol or chosen,
                                                   "assignments": [{"member_id": member,
                                                                    "assignment": _assignment(topic, [0])}]})
        out["sync"] = {"error": err_name(r["error_code"]), "assignment": bytes(r["assignment"]).hex()}
        for step in then:
            if step == "leave":
                r = conn.call("LeaveGroup", 3, {"group_id": group,
                                                "members": [{"member_id": member, "group_instance_id": None}]})
                out["leave"] = [err_name(r["error_code"])] + [err_name(m["error_code"]) for m in r["members"]]
            else:
                m, g = member, gen
                if step == "stale_heartbeat":
                    g = gen - 1
                elif step == "unknown_heartbeat":
                    m = "nobody-" + member
                r = conn.call("Heartbeat", 3, {"group_id": group, "generation_id": g, "member_id": m,
                                               "group_instance_id": None})
                out[step] = err_name(r["error_code"])
    return out


def sync_unknown(t: Target, group: str):
    """SyncGroup and Heartbeat from a member of a group that does not exist."""
    find_coordinator(t, group)
    with raw.Connection(t.bootstrap) as conn:
        s = _group_call(t, conn, "SyncGroup", 5, {"group_id": group, "generation_id": 1, "member_id": "m-1",
                                                   "group_instance_id": None, "protocol_type": None,
                                                   "protocol_name": None, "assignments": []})
        h = _group_call(t, conn, "Heartbeat", 3, {"group_id": group, "generation_id": 1, "member_id": "m-1",
                                                  "group_instance_id": None})
    return {"sync": err_name(s["error_code"]), "heartbeat": err_name(h["error_code"])}


def commit_offsets(t: Target, group: str, offsets: list[list]):
    """Admin AlterConsumerGroupOffsets (OffsetCommit of an empty group): [topic, partition, offset]."""
    tps = [TopicPartition(tp, p, o) for tp, p, o in offsets]
    deadline = time.monotonic() + 15
    while True:
        futures = t.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                                       request_timeout=ADMIN_TIMEOUT_S)
        try:
            r = futures[group].result(timeout=ADMIN_TIMEOUT_S)
            out = sorted([tp.topic, tp.partition, tp.offset, tp.error.name() if tp.error else "NONE"]
                         for tp in r.topic_partitions)
        except Exception as e:  # noqa: BLE001
            out = exc_name(e)
        # librdkafka does not retry partition-level coordinator errors; a client would.
        loading = {"COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE"}
        if isinstance(out, list) and any(row[3] in loading for row in out) and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        return out


def commit_raw(t: Target, group: str, topic: str, partition: int, offset: int, generation: int = -1,
               member: str = "", version: int = 8):
    """Raw OffsetCommit (a simple, memberless commit unless generation/member are given)."""
    find_coordinator(t, group)
    with raw.Connection(t.bootstrap) as conn:
        r = _group_call(t, conn, "OffsetCommit", version, {
            "group_id": group, "generation_id_or_member_epoch": generation, "member_id": member,
            "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [{"partition_index": partition, "committed_offset": offset,
                                                         "committed_leader_epoch": -1,
                                                         "committed_metadata": "md"}]}]})
    return [err_name(p["error_code"]) for tp in r["topics"] for p in tp["partitions"]]


def fetch_offsets(t: Target, group: str, partitions: list[list] | None = None):
    """Admin ListConsumerGroupOffsets: sorted [topic, partition, offset, error]."""
    req = ConsumerGroupTopicPartitions(group, None if partitions is None else
                                       [TopicPartition(tp, p) for tp, p in partitions])
    try:
        r = t.admin.list_consumer_group_offsets([req], request_timeout=ADMIN_TIMEOUT_S)[group].result(
            timeout=ADMIN_TIMEOUT_S)
        return sorted([tp.topic, tp.partition, tp.offset, tp.error.name() if tp.error else "NONE"]
                      for tp in r.topic_partitions)
    except Exception as e:  # noqa: BLE001
        return exc_name(e)


def list_groups(t: Target, prefix: str):
    """Admin ListGroups, only the groups whose id starts with `prefix`: sorted [id, state, type]."""
    r = t.admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)
    return {"groups": sorted([g.group_id, g.state.name if g.state else None, g.is_simple_consumer_group]
                             for g in r.valid if g.group_id.startswith(prefix)),
            "errors": len(r.errors)}


def describe_group(t: Target, group: str):
    try:
        d = t.admin.describe_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)[group].result(
            timeout=ADMIN_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001
        return exc_name(e)
    return {"state": d.state.name, "simple": d.is_simple_consumer_group, "assignor": d.partition_assignor,
            "members": sorted(sorted([a.topic, a.partition] for a in m.assignment.topic_partitions)
                              for m in d.members),
            "coordinator_id": d.coordinator.id if d.coordinator else None}


def delete_groups(t: Target, groups: list[str]):
    futures = t.admin.delete_consumer_groups(groups, request_timeout=ADMIN_TIMEOUT_S)
    return {g: _result(f) for g, f in futures.items()}


def consume_group(t: Target, group: str, topic: str, expect: int, commit: bool = True):
    """A confluent-kafka consumer in `group` subscribed to `topic`: its assignment, the offsets
    of the `expect` records it reads from the beginning, and its committed offsets after a
    synchronous commit. Closed (leaving the group) at the end."""
    c = Consumer({"bootstrap.servers": t.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 10000, "log_level": 2,
                  "partition.assignment.strategy": "range"})
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < expect and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                got.append(m.error().name())
                continue
            got.append([m.partition(), m.offset()])
        assignment = sorted([tp.topic, tp.partition] for tp in c.assignment())
        committed = None
        if commit and got:
            c.commit(asynchronous=False)
            committed = sorted([tp.topic, tp.partition, tp.offset]
                               for tp in c.committed([TopicPartition(topic, p) for _, p in assignment], timeout=10))
        return {"assignment": assignment, "records": sorted(got), "committed": committed}
    finally:
        c.close()


def api_versions(t: Target, version: int = 3):
    """ApiVersions at `version`: its error (UNSUPPORTED_VERSION above the broker's highest, with
    a v0 body) and whether the answer lists ApiVersions itself."""
    error, keys = raw.api_versions_any(t.bootstrap, version)
    return {"error": err_name(error), "lists_api_versions": 18 in keys}


def api_key_set(t: Target):
    """The sorted API keys a broker advertises (with their version ranges)."""
    r = raw.call(t.bootstrap, "ApiVersions", 3, {"client_software_name": "differential",
                                                  "client_software_version": "1"})
    return sorted([k["api_key"], k["min_version"], k["max_version"]] for k in r["api_keys"])


def sleep(t: Target, seconds: float):
    time.sleep(seconds)
    return None


def unique() -> str:
    return uuid.uuid4().hex[:8]


OPS = {name: fn for name, fn in globals().items()
       if callable(fn) and not name.startswith("_") and fn.__module__ == __name__
       and name not in ("err_name", "exc_name", "ConfigSource_name", "unique", "Target", "wait_topic")}

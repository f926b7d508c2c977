"""Raw Kafka protocol calls: one request frame on a fresh connection, its response decoded,
using kafka-python's schema-generated message classes (kafka.protocol.*). Nested request fields
are given as plain dicts and lists; responses come back as plain dicts (`to_dict()`)."""

from __future__ import annotations

import socket
import struct
import time

from kafka.protocol.admin.topics import DeleteRecordsRequest, DeleteRecordsResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.group import (HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
                                           JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
                                           OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
                                           OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse)
from kafka.protocol.consumer.offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

# API name -> (request class, response class).
APIS = {
    "Produce": (ProduceRequest, ProduceResponse),
    "Fetch": (FetchRequest, FetchResponse),
    "ListOffsets": (ListOffsetsRequest, ListOffsetsResponse),
    "Metadata": (MetadataRequest, MetadataResponse),
    "OffsetCommit": (OffsetCommitRequest, OffsetCommitResponse),
    "OffsetFetch": (OffsetFetchRequest, OffsetFetchResponse),
    "FindCoordinator": (FindCoordinatorRequest, FindCoordinatorResponse),
    "JoinGroup": (JoinGroupRequest, JoinGroupResponse),
    "Heartbeat": (HeartbeatRequest, HeartbeatResponse),
    "LeaveGroup": (LeaveGroupRequest, LeaveGroupResponse),
    "SyncGroup": (SyncGroupRequest, SyncGroupResponse),
    "DeleteRecords": (DeleteRecordsRequest, DeleteRecordsResponse),
    "ApiVersions": (ApiVersionsRequest, ApiVersionsResponse),
}

TIMEOUT_S = 15.0


def _build(cls, data):
    """An instance of the DataContainer `cls` from a dict, nested structs from nested dicts."""
    if not isinstance(data, dict):
        return data
    fields = cls._struct.fields
    kw = {}
    for name, value in data.items():
        field = fields[name]
        if field.is_struct_array():
            kw[name] = [_build(field.data_class, v) for v in value]
        elif field.is_struct():
            kw[name] = _build(field.data_class, value)
        else:
            kw[name] = value
    return cls(**kw)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class Connection:
    """One connection to a broker; `call` sends a request and returns the decoded response (or
    None for a request that expects none, i.e. Produce with acks 0)."""

    def __init__(self, bootstrap: str):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        self.correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, api: str, version: int, body: dict) -> dict | None:
        req_cls, resp_cls = APIS[api]
        req = _build(req_cls[version], body)
        self.correlation += 1
        req.with_header(correlation_id=self.correlation, client_id="differential")
        self.sock.sendall(req.encode(header=True, framed=True))
        if api == "Produce" and body.get("acks") == 0:
            return None
        size = struct.unpack(">i", _read_exact(self.sock, 4))[0]
        resp = resp_cls.decode(_read_exact(self.sock, size), version=version, header=True)
        return resp.to_dict(json=False)


def call(bootstrap: str, api: str, version: int, body: dict) -> dict | None:
    with Connection(bootstrap) as c:
        return c.call(api, version, body)


def record_batch(records: list[tuple[bytes | None, bytes | None]], timestamp_ms: int | None = None) -> bytes:
    """A v2 record batch (uncompressed) holding `records` as (key, value) pairs."""
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=64 * 1024 * 1024)
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    for key, value in records:
        b.append(timestamp=ts, key=key, value=value, headers=[])
    b.close()
    return bytes(b.buffer())


def count_records(records: bytes | None) -> list[int]:
    """The offsets of the records in a fetched record set."""
    if records is None:
        return []
    mr = records if isinstance(records, MemoryRecords) else MemoryRecords(bytes(records))
    offsets = []
    while True:
        batch = mr.next_batch()
        if batch is None:
            break
        offsets.extend(r.offset for r in batch)
    return offsets


def api_versions_any(bootstrap: str, version: int) -> tuple[int, list[int]]:
    """ApiVersions at any version, hand-framed (v0 request body, which is empty; a broker that
    does not know the version answers with a v0 body): its error code and the API keys listed.
    Only for versions 0..2 and unsupported ones (v3+ bodies are flexible)."""
    client = b"differential"
    frame = struct.pack(">hhih", 18, version, 1, len(client)) + client
    if version >= 3:
        # Header v2 (its tagged fields) and a v3 body: two empty compact strings, no tags.
        frame += b"\x00" + b"\x01\x01\x00"
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _read_exact(s, 4))[0]
        body = _read_exact(s, size)
    _correlation, error, n = struct.unpack(">ihi", body[:10])
    keys = [struct.unpack(">h", body[10 + 6 * i:12 + 6 * i])[0] for i in range(max(n, 0))]
    return error, keys

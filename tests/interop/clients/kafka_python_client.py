#!/usr/bin/env python3
"""kafka-python (3.x, pure Python) interop client. See common.py for the interface."""

from __future__ import annotations

import os
import time

import common
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError


def _bootstrap_ms(timeout: float) -> int:
    return int(min(timeout, 15.0) * 1000)


def _api_version() -> dict:
    """Version negotiation is part of what is under test, so it is left to kafka-python.
    INTEROP_KAFKA_PYTHON_API_VERSION=2.8 pins it instead; the librdkafka mock broker needs
    that, since it answers kafka-python 3's ApiVersions v4 with a body kafka-python cannot decode."""
    v = os.environ.get("INTEROP_KAFKA_PYTHON_API_VERSION")
    return {"api_version": tuple(int(x) for x in v.split("."))} if v else {}


def produce(args) -> None:
    timeout_ms = int(args.timeout * 1000)
    try:
        p = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            compression_type=None if args.codec == "none" else args.codec,
            linger_ms=5,
            bootstrap_timeout_ms=_bootstrap_ms(args.timeout),
            **_api_version(),
            max_block_ms=timeout_ms,
            request_timeout_ms=min(timeout_ms, 10000),
            delivery_timeout_ms=max(timeout_ms, 10000 + 5),
        )
    except KafkaError as e:
        common.fail(f"cannot start producer against {args.bootstrap}: {e!r}")
    try:
        futures = []
        for i in range(args.count):
            futures.append(p.send(
                args.topic,
                key=common.record_key(args.prefix, i),
                value=common.record_value(args.prefix, i),
                headers=common.record_headers(args.prefix, i),
                timestamp_ms=common.record_timestamp(i),
            ))
        p.flush(timeout=args.timeout + 5)
        errors = []
        for i, f in enumerate(futures):
            try:
                f.get(timeout=max(0.1, args.timeout))
            except Exception as e:  # noqa: BLE001 - report every failure kind
                errors.append(f"record {i}: {e!r}")
        if errors:
            common.fail("; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))
    except KafkaError as e:
        common.fail(f"produce failed: {e!r}")
    finally:
        p.close(timeout=5)
    print(f"produced {len(futures)} records to {args.topic} codec={args.codec}", flush=True)


def consume(args) -> None:
    deadline = time.monotonic() + args.timeout
    try:
        c = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=None,  # plain assign(), no group coordination
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            bootstrap_timeout_ms=_bootstrap_ms(args.timeout),
            request_timeout_ms=10000,
            **_api_version(),
        )
    except KafkaError as e:
        common.fail(f"cannot start consumer against {args.bootstrap}: {e!r}")
    try:
        partitions: set[int] = set()
        while not partitions:
            if time.monotonic() >= deadline:
                common.fail(f"timed out after {args.timeout}s waiting for partitions of {args.topic}")
            partitions = c.partitions_for_topic(args.topic) or set()
            if not partitions:
                time.sleep(0.2)
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = 0
        while got < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                common.fail(f"timed out after {args.timeout}s with {got}/{args.count} records")
            batches = c.poll(timeout_ms=int(min(left, 0.5) * 1000))
            for tp in sorted(batches, key=lambda t: t.partition):
                for r in batches[tp]:
                    common.emit(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                    got += 1
    except KafkaError as e:
        common.fail(f"consume failed: {e!r}")
    finally:
        c.close(autocommit=False)


def main() -> None:
    args = common.parse_args(prog="kafka_python_client.py")
    common.arm_watchdog(args.timeout + (20 if args.command == "produce" else 3), args.command)
    if args.command == "produce":
        produce(args)
    else:
        consume(args)


if __name__ == "__main__":
    main()

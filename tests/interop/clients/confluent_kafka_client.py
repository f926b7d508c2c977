#!/usr/bin/env python3
"""confluent-kafka (Python, bundled librdkafka 2.x) interop client. See common.py for the interface."""

from __future__ import annotations

import time
import uuid

import common
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition


def produce(args) -> None:
    errors: list[str] = []
    delivered = 0

    def on_delivery(err, msg):
        nonlocal delivered
        if err is not None:
            errors.append(f"delivery failed ({msg.topic()} [{msg.partition()}]): {err}")
        else:
            delivered += 1

    def on_error(err):
        # Connection-level errors are retried by librdkafka; fatal ones end the run.
        if err.fatal():
            errors.append(f"fatal client error: {err}")

    timeout_ms = int(args.timeout * 1000)
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "compression.type": args.codec,
        "linger.ms": 5,
        "message.timeout.ms": timeout_ms,
        "socket.timeout.ms": min(timeout_ms, 10000),
        "error_cb": on_error,
    })
    for i in range(args.count):
        while True:
            try:
                p.produce(
                    args.topic,
                    key=common.record_key(args.prefix, i),
                    value=common.record_value(args.prefix, i),
                    headers=common.record_headers(args.prefix, i),
                    timestamp=common.record_timestamp(i),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(args.timeout + 5)
    if remaining:
        errors.append(f"{remaining} record(s) still undelivered after {args.timeout + 5:.0f}s")
    if errors:
        common.fail("; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))
    if delivered != args.count:
        common.fail(f"only {delivered}/{args.count} records acknowledged")
    print(f"produced {delivered} records to {args.topic} codec={args.codec}", flush=True)


def consume(args) -> None:
    deadline = time.monotonic() + args.timeout
    fatal: list[str] = []

    def on_error(err):
        if err.fatal():
            fatal.append(str(err))

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        # assign() needs no group coordination; a group.id is still mandatory here.
        "group.id": f"interop-confluent-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "socket.timeout.ms": 10000,
        "error_cb": on_error,
    })
    try:
        partitions = None
        last_err = "no metadata"
        while partitions is None:
            left = deadline - time.monotonic()
            if left <= 0:
                common.fail(f"timed out after {args.timeout}s waiting for metadata of {args.topic}: {last_err}")
            try:
                md = c.list_topics(args.topic, timeout=min(left, 5.0))
                tmd = md.topics.get(args.topic)
                if tmd is not None and tmd.error is None and tmd.partitions:
                    partitions = sorted(tmd.partitions)
                elif tmd is not None and tmd.error is not None:
                    last_err = str(tmd.error)
                    time.sleep(0.2)
            except KafkaException as e:
                last_err = str(e)
        c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
        got = 0
        while got < args.count:
            if fatal:
                common.fail(f"fatal client error: {fatal[0]}")
            left = deadline - time.monotonic()
            if left <= 0:
                common.fail(f"timed out after {args.timeout}s with {got}/{args.count} records")
            msg = c.poll(min(left, 0.5))
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                common.fail(f"consume error: {msg.error()}")
            _, ts = msg.timestamp()
            common.emit(msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers() or [], ts)
            got += 1
    finally:
        c.close()


def main() -> None:
    args = common.parse_args(prog="confluent_kafka_client.py")
    common.arm_watchdog(args.timeout + (20 if args.command == "produce" else 3), args.command)
    if args.command == "produce":
        produce(args)
    else:
        consume(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""aiokafka (asyncio, pure Python with cramjam codecs) interop client. See common.py for the interface."""

from __future__ import annotations

import asyncio
import time

import common
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError


async def produce(args) -> None:
    request_timeout_ms = int(min(args.timeout, 10.0) * 1000)
    p = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        compression_type=None if args.codec == "none" else args.codec,
        linger_ms=5,
        request_timeout_ms=request_timeout_ms,
    )
    try:
        await p.start()
    except KafkaError as e:
        await p.stop()
        common.fail(f"cannot start producer against {args.bootstrap}: {e!r}")
    try:
        futures = []
        for i in range(args.count):
            futures.append(await p.send(
                args.topic,
                key=common.record_key(args.prefix, i),
                value=common.record_value(args.prefix, i),
                headers=common.record_headers(args.prefix, i),
                timestamp_ms=common.record_timestamp(i),
            ))
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [f"record {i}: {r!r}" for i, r in enumerate(results) if isinstance(r, BaseException)]
        if errors:
            common.fail("; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))
    except KafkaError as e:
        common.fail(f"produce failed: {e!r}")
    finally:
        await p.stop()
    print(f"produced {len(futures)} records to {args.topic} codec={args.codec}", flush=True)


async def consume(args) -> None:
    deadline = time.monotonic() + args.timeout
    c = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,  # plain assign(), no group coordination
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    try:
        await c.start()
    except KafkaError as e:
        await c.stop()
        common.fail(f"cannot start consumer against {args.bootstrap}: {e!r}")
    try:
        partitions: set[int] = set()
        while not partitions:
            if time.monotonic() >= deadline:
                common.fail(f"timed out after {args.timeout}s waiting for partitions of {args.topic}")
            partitions = c.partitions_for_topic(args.topic) or set()
            if not partitions:
                # Track this topic in the client's metadata and wait for a refresh
                # (AIOKafkaConsumer has no public call for that without subscribe()).
                await c._client.add_topic(args.topic)  # noqa: SLF001
                if not c.partitions_for_topic(args.topic):
                    await asyncio.sleep(0.2)
                    await c._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        got = 0
        while got < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                common.fail(f"timed out after {args.timeout}s with {got}/{args.count} records")
            batches = await c.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for tp in sorted(batches, key=lambda t: t.partition):
                for r in batches[tp]:
                    common.emit(r.partition, r.offset, r.key, r.value, list(r.headers), r.timestamp)
                    got += 1
    except KafkaError as e:
        common.fail(f"consume failed: {e!r}")
    finally:
        await c.stop()


def main() -> None:
    args = common.parse_args(prog="aiokafka_client.py")
    coro = produce(args) if args.command == "produce" else consume(args)

    async def bounded():
        try:
            await asyncio.wait_for(coro, timeout=args.timeout + 15)
        except asyncio.TimeoutError:
            common.fail(f"{args.command} did not finish within {args.timeout + 15:.0f}s")

    asyncio.run(bounded())


if __name__ == "__main__":
    main()

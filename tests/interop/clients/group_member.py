#!/usr/bin/env python3
"""One confluent-kafka consumer group member that processes then commits each record.

Prints one JSON line per processed record ({"p": partition, "o": offset, "v": value}) and
commits it synchronously right after; prints {"assigned": [partitions]} after every rebalance.
Runs until killed or SIGTERM. Used by test_groups.py, which kill -9s members.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from confluent_kafka import Consumer, KafkaException


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--session-timeout-ms", default="6000")
    ap.add_argument("--assignor", default="range",
                    help="range, roundrobin or cooperative-sticky; with --group-protocol consumer, "
                         "the broker's assignor: uniform or range")
    ap.add_argument("--group-protocol", default="classic", choices=["classic", "consumer"],
                    help="consumer: KIP-848, where the broker assigns and times sessions")
    args = ap.parse_args()
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if args.group_protocol == "consumer":
        # Session timeout and heartbeat interval are the broker's in this protocol.
        config.update({"group.protocol": "consumer", "group.remote.assignor": args.assignor})
    else:
        config.update({
            "session.timeout.ms": int(args.session_timeout_ms),
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": args.assignor,
        })
    consumer = Consumer(config)
    # Cooperative rebalancing and the consumer protocol hand out and take back partitions
    # incrementally.
    incremental = args.assignor == "cooperative-sticky" or args.group_protocol == "consumer"

    def on_assign(c, partitions):
        print(json.dumps({"assigned": sorted(p.partition for p in partitions), "incremental": incremental}), flush=True)

    def on_revoke(c, partitions):
        print(json.dumps({"revoked": sorted(p.partition for p in partitions)}), flush=True)

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    try:
        while running:
            m = consumer.poll(0.2)
            if m is None:
                continue
            if m.error():
                print(json.dumps({"error": str(m.error())}), file=sys.stderr, flush=True)
                continue
            print(json.dumps({"p": m.partition(), "o": m.offset(), "v": m.value().decode()}), flush=True)
            try:
                consumer.commit(message=m, asynchronous=False)
            except KafkaException as e:
                # A commit refused during a rebalance: the record will be seen again, as in Kafka.
                print(json.dumps({"commit_error": str(e)}), file=sys.stderr, flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()

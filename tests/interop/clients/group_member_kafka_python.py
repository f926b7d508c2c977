#!/usr/bin/env python3
"""One kafka-python consumer group member that processes then commits each record: the same
output as group_member.py ({"p","o","v"} per record, {"assigned": [...]} per rebalance)."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata


class Announce(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        print(json.dumps({"revoked": sorted(tp.partition for tp in revoked)}), flush=True)

    def on_partitions_assigned(self, assigned):
        print(json.dumps({"assigned": sorted(tp.partition for tp in assigned)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--session-timeout-ms", default="6000")
    ap.add_argument("--assignor", default="range")
    args = ap.parse_args()
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(args.session_timeout_ms),
        heartbeat_interval_ms=500,
    )
    consumer.subscribe([args.topic], listener=Announce())
    try:
        while running:
            for tp, records in consumer.poll(timeout_ms=200).items():
                for m in records:
                    print(json.dumps({"p": m.partition, "o": m.offset, "v": m.value.decode()}), flush=True)
                    try:
                        consumer.commit({tp: OffsetAndMetadata(m.offset + 1, None, -1)})
                    except KafkaError as e:
                        print(json.dumps({"commit_error": str(e)}), file=sys.stderr, flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()

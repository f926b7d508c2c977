#!/usr/bin/env python3
"""A confluent-kafka transactional producer that sends and then never commits: test_transactions.py
kills it (SIGKILL) mid-transaction.

    txn_hang.py --bootstrap HOST:PORT --topic T --txn-id ID --count N --prefix P --timeout-ms MS

Sends values b"P-<i>" to partition i % partitions inside one transaction (transaction.timeout.ms
MS), waits until the broker acknowledged every record, prints "sent N" and sleeps until killed
(at most 120 s). Exit 1 on any Kafka error.
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka import Producer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--txn-id", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--timeout-ms", type=int, required=True)
    args = ap.parse_args()

    errors: list[str] = []
    p = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.txn_id,
                  "transaction.timeout.ms": args.timeout_ms, "linger.ms": 5,
                  "error_cb": lambda e: errors.append(str(e)) if e.fatal() else None})
    p.init_transactions(15)
    partitions = len(p.list_topics(args.topic, timeout=10).topics[args.topic].partitions)
    p.begin_transaction()

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    for i in range(args.count):
        p.produce(args.topic, value=f"{args.prefix}-{i}".encode(), partition=i % partitions,
                  on_delivery=on_delivery)
    if p.flush(15) != 0 or errors:
        sys.stderr.write(f"error: not every record was acknowledged: {errors[:3]}\n")
        sys.exit(1)
    print(f"sent {args.count}", flush=True)
    time.sleep(120)
    sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Run librdkafka's built-in mock cluster as a stand-in broker (INTEROP_BROKER=mock).

This checks the interop clients and the test itself, not Strata: a matrix that passes against the
mock and fails against Strata points at the broker. librdkafka's mock cluster lives inside a
client instance and listens on a real 127.0.0.1 port; this process keeps one alive, prints
`BOOTSTRAP 127.0.0.1:PORT` on stdout and runs until SIGTERM/SIGINT or stdin closes.
"""

from __future__ import annotations

import signal
import sys
import threading

from confluent_kafka import Producer


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    holder = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    md = holder.list_topics(timeout=10)
    broker = next(iter(md.brokers.values()))
    print(f"BOOTSTRAP {broker.host}:{broker.port}", flush=True)

    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            stop.set()

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.5):
        holder.poll(0)


if __name__ == "__main__":
    main()

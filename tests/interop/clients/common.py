"""Shared pieces of the Python interop clients and of the test that drives them.

Every client program (Python, Node, Go) implements the same command line:

    <client> produce --bootstrap HOST:PORT --topic T --codec C --count N --prefix P [--timeout S]
    <client> consume --bootstrap HOST:PORT --topic T --count N --timeout S

and the same record recipe, so the test can cross every producer with every consumer.

Record i of a produce run with prefix P (0 <= i < N):
    key        b"P-key-<i>"
    value      b"P-value-<i>" + VALUE_SUFFIX  (non-ASCII UTF-8 and raw bytes, no 0x1e/0x1f)
    headers    [("h1", b"P-<i>"), ("h2", b"\\x00\\x01")]
    timestamp  BASE_TIMESTAMP_MS + i   (CreateTime)
The Node and Go clients spell the same recipe in their own language; keep them in step.

A consume run prints one JSON object per record on stdout:
    {"partition": int, "offset": int, "key": hex|null, "value": hex|null,
     "headers": [[name, hex|null], ...], "timestamp": int}
and exits 0 only when it has printed --count records before --timeout.

Exit codes of every client: 0 success, 1 Kafka/timeout failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

# 2023-11-14T22:13:20Z: a fixed base so that consumers can check the exact timestamp.
BASE_TIMESTAMP_MS = 1_700_000_000_000

# Non-ASCII UTF-8 ("é✓€"), a NUL, control and high bytes. Free of 0x1e/0x1f, which the
# kcat client uses as record and key delimiters on kcat's stdin.
VALUE_SUFFIX = "|\u00e9\u2713\u20ac|".encode() + bytes([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF])

H2_VALUE = b"\x00\x01"


def record_key(prefix: str, i: int) -> bytes:
    return f"{prefix}-key-{i}".encode()


def record_value(prefix: str, i: int) -> bytes:
    return f"{prefix}-value-{i}".encode() + VALUE_SUFFIX


def record_headers(prefix: str, i: int) -> list[tuple[str, bytes]]:
    return [("h1", f"{prefix}-{i}".encode()), ("h2", H2_VALUE)]


def record_timestamp(i: int) -> int:
    return BASE_TIMESTAMP_MS + i


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Kafka interop client: produce a known batch or dump a topic as JSON lines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("produce", help="produce --count records and wait for every delivery report")
    p.add_argument("--bootstrap", required=True, help="HOST:PORT")
    p.add_argument("--topic", required=True)
    p.add_argument("--codec", choices=CODECS, default="none")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds before undelivered records count as failed (default 30)")

    c = sub.add_parser("consume", help="read every partition from the beginning, print JSON lines")
    c.add_argument("--bootstrap", required=True, help="HOST:PORT")
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, required=True, help="seconds")

    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be >= 0")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return args


def hex_or_none(b: bytes | bytearray | None) -> str | None:
    return None if b is None else bytes(b).hex()


def to_bytes(v: object) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode()
    return bytes(v)  # type: ignore[arg-type]


def emit(partition: int, offset: int, key, value, headers, timestamp: int) -> None:
    """Print one consumed record as a JSON line (bytes hex-encoded)."""
    line = {
        "partition": int(partition),
        "offset": int(offset),
        "key": hex_or_none(to_bytes(key)),
        "value": hex_or_none(to_bytes(value)),
        "headers": [[name if isinstance(name, str) else bytes(name).decode("utf-8", "replace"),
                     hex_or_none(to_bytes(hv))] for name, hv in (headers or [])],
        "timestamp": int(timestamp),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def arm_watchdog(seconds: float, what: str) -> threading.Timer:
    """Hard bound for a client run: some client calls block past their own timeouts."""
    def expire():
        sys.stdout.flush()
        sys.stderr.write(f"error: {what} did not finish within {seconds:.0f}s\n")
        sys.stderr.flush()
        os._exit(1)

    t = threading.Timer(seconds, expire)
    t.daemon = True
    t.start()
    return t


def fail(msg: str, code: int = 1) -> "NoReturn":  # noqa: F821
    sys.stdout.flush()
    sys.stderr.write(f"error: {msg}\n")
    sys.stderr.flush()
    sys.exit(code)

#!/usr/bin/env python3
"""kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2) interop client: a wrapper around the CLI.

Produce pipes the records into `kcat -P` on stdin (key and record delimiters 0x1f/0x1e, -z codec).
kcat's -H headers are fixed for a whole run and come from argv, which cannot carry a NUL byte,
and kcat has no per-record timestamp option, so a kcat produce run sends
    headers   [("h1", b"P"), ("h2", KCAT_H2_VALUE)]  on every record
    timestamp left to librdkafka (CreateTime = now).
Consume uses `kcat -C -o beginning -c N -J` and re-encodes kcat's JSON envelope (yajl writes the
raw bytes, escaping only quotes, backslash and control characters) into common.py's format.

Uses only the standard library, so it runs with any python3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import common

KCAT = os.environ.get("KCAT", "kcat")
KCAT_H2_VALUE = b"\x01\xff"


def kcat_headers(prefix: str) -> list[tuple[str, bytes]]:
    return [("h1", prefix.encode()), ("h2", KCAT_H2_VALUE)]


def _kcat_path() -> str:
    path = shutil.which(KCAT)
    if path is None:
        common.fail(f"{KCAT!r} not found on PATH (run tests/install-deps.sh)")
    return path


def _tail(b: bytes, n: int = 1500) -> str:
    s = b.decode("utf-8", "replace").strip()
    return s if len(s) <= n else "..." + s[-n:]


def produce(args) -> None:
    kcat = _kcat_path()
    payload = bytearray()
    for i in range(args.count):
        payload += common.record_key(args.prefix, i) + b"\x1f" + common.record_value(args.prefix, i) + b"\x1e"
    h1, h2 = kcat_headers(args.prefix)
    timeout_ms = int(args.timeout * 1000)
    cmd = [
        kcat, "-P", "-b", args.bootstrap, "-t", args.topic,
        "-K", "\\x1f", "-D", "\\x1e",
        "-H", f"{h1[0]}={h1[1].decode()}",
        "-H", f"{h2[0]}=".encode() + h2[1],  # argv may hold any byte but NUL
        "-X", "acks=all",
        "-X", f"message.timeout.ms={timeout_ms}",
        "-X", "linger.ms=5",
        "-m", str(max(1, int(min(args.timeout, 10)))),
        "-vv",  # one "% Message delivered" line per delivery report on stderr
    ]
    if args.codec != "none":
        cmd += ["-z", args.codec]
    try:
        r = subprocess.run(cmd, input=bytes(payload), capture_output=True, timeout=args.timeout + 15)
    except subprocess.TimeoutExpired as e:
        common.fail(f"kcat -P did not finish within {args.timeout + 15:.0f}s: {_tail(e.stderr or b'')}")
    delivered = r.stderr.count(b"% Message delivered")
    if r.returncode != 0:
        common.fail(f"kcat -P exited {r.returncode} ({delivered}/{args.count} delivered): {_tail(r.stderr)}")
    if delivered != args.count:
        common.fail(f"kcat -P reported {delivered}/{args.count} deliveries: {_tail(r.stderr)}")
    print(f"produced {delivered} records to {args.topic} codec={args.codec}", flush=True)


def _b(s: str | None) -> bytes | None:
    # yajl emitted the record's raw bytes; surrogateescape (used when decoding the line)
    # turns any byte that is not valid UTF-8 back into itself.
    return None if s is None else s.encode("utf-8", "surrogateescape")


def consume(args) -> None:
    kcat = _kcat_path()
    cmd = [
        kcat, "-C", "-b", args.bootstrap, "-t", args.topic,
        "-o", "beginning", "-c", str(args.count), "-J", "-u",
        "-m", str(max(1, int(min(args.timeout, 10)))),
    ]
    if args.count == 0:
        return
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=args.timeout, stdin=subprocess.DEVNULL)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or b"", e.stderr or b"", None
    got = 0
    for raw in out.split(b"\n"):
        if not raw.strip():
            continue
        env = json.loads(raw.decode("utf-8", "surrogateescape"))
        flat = env.get("headers") or []
        headers = [(flat[j], _b(flat[j + 1])) for j in range(0, len(flat), 2)]
        common.emit(env["partition"], env["offset"], _b(env.get("key")), _b(env.get("payload")),
                    headers, env.get("ts", -1))
        got += 1
    if rc is None:
        common.fail(f"timed out after {args.timeout}s with {got}/{args.count} records: {_tail(err)}")
    if rc != 0:
        common.fail(f"kcat -C exited {rc} after {time.monotonic() - start:.1f}s "
                    f"with {got}/{args.count} records: {_tail(err)}")
    if got != args.count:
        common.fail(f"kcat -C printed {got}/{args.count} records: {_tail(err)}")


def main() -> None:
    args = common.parse_args(prog="kcat_client.py")
    common.arm_watchdog(args.timeout + (20 if args.command == "produce" else 3), args.command)
    if args.command == "produce":
        produce(args)
    else:
        consume(args)


if __name__ == "__main__":
    main()

"""Security-matrix client for kcat (Debian's kcat 1.7.1 on librdkafka 2.0.2): `kcat_secure.py
'<json config>'`. Produces `count` records to `topic` with `kcat -P` over the listener the
config describes, then reads them back with `kcat -G group topic` (a balanced consumer in
group `group`). Prints {"produced": n, "consumed": n} and exits 0, or {"stage": ...,
"error": ...} and exits 1. Config keys as in kafkajs_secure.js.

kcat retries a refused login or a refused topic until its own timeouts run out; the first
line on its stderr that says so is the answer, and the run stops there (as python_secure.py
stops confluent-kafka at its first authentication error). Uses only the standard library.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time

KCAT = os.environ.get("KCAT", "kcat")
# librdkafka's words, printed by kcat on stderr, for a refused login ("SASL authentication
# error: ...", the error callback's "Local: Authentication failure"), a refused TLS handshake,
# and a refused topic or group ("Broker: Topic authorization failed").
REFUSED = re.compile(r"SASL authentication error|Authentication failure|SSL handshake failed|"
                     r"Topic authorization failed|Group authorization failed", re.I)


def finish(obj: dict, code: int) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    os._exit(code)


def run(stage: str, argv: list[str], stdin: bytes, deadline: float) -> tuple[int, bytes, str]:
    """Runs kcat until it exits, it prints a refusal (then it is killed and the run fails with
    that line), or `deadline`. Returns its exit code, stdout and stderr."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    out, err = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    open_streams = 2
    try:
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                finish({"stage": stage, "error": "timed out; " + err.decode(errors="replace")[-1500:]}, 1)
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                key.data.extend(chunk)
                if key.data is err:
                    for line in err.decode(errors="replace").splitlines():
                        if REFUSED.search(line):
                            finish({"stage": stage, "error": line.strip()}, 1)
        return proc.wait(timeout=max(0.1, deadline - time.monotonic())), bytes(out), err.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    deadline = time.monotonic() + cfg["timeout"]
    kcat = shutil.which(KCAT)
    if kcat is None:
        finish({"stage": "connect", "error": f"{KCAT!r} not on PATH"}, 1)
    base = [kcat, "-b", cfg["bootstrap"], "-X", f"security.protocol={cfg['protocol']}",
            "-X", f"ssl.ca.location={cfg['ca']}"]
    if cfg.get("cert"):
        base += ["-X", f"ssl.certificate.location={cfg['cert']}", "-X", f"ssl.key.location={cfg['key']}"]
    if cfg["protocol"] == "SASL_SSL":
        base += ["-X", f"sasl.mechanisms={cfg['mechanism']}", "-X", f"sasl.username={cfg['username']}",
                 "-X", f"sasl.password={cfg['password']}"]
    values = [f"{cfg['prefix']}-value-{i}" for i in range(cfg["count"])]
    lines = "".join(f"{cfg['prefix']}-key-{i}:{v}\n" for i, v in enumerate(values)).encode()
    # -vv: one "% Message delivered" line per delivery report.
    rc, _, err = run("produce", [*base, "-P", "-t", cfg["topic"], "-K", ":", "-X", "acks=all",
                                 "-X", "message.timeout.ms=15000", "-vv"], lines, deadline)
    delivered = err.count("% Message delivered")
    if rc != 0 or delivered != cfg["count"]:
        finish({"stage": "produce", "error": f"kcat -P exit {rc}, {delivered} delivered: {err[-1500:]}"}, 1)
    rc, out, err = run("consume", [*base, "-G", cfg["group"], "-X", "auto.offset.reset=earliest",
                                   "-c", str(cfg["count"]), "-f", "%s\\n", cfg["topic"]], b"", deadline)
    seen = set(out.decode(errors="replace").split())
    if rc != 0 or not seen >= set(values):
        finish({"stage": "consume", "error": f"kcat -G exit {rc}, read {sorted(seen)}: {err[-1500:]}"}, 1)
    finish({"produced": cfg["count"], "consumed": len(seen)}, 0)


if __name__ == "__main__":
    main()

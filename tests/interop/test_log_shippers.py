"""Log shippers ship a log file into a Strata topic, every line arriving once: Debian's rsyslog
with omkafka and syslog-ng with its kafka-c destination (both on librdkafka 2.0.2).

The two daemons conflict as Debian packages; tests/install-deps.sh installs syslog-ng and
unpacks rsyslog with its omkafka module under target/interop/rsyslog. Each daemon runs in the
foreground with a configuration of its own (no system log socket, state under the test's
temporary directory) and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from conftest import create_topic

REPO = Path(__file__).resolve().parents[2]
RSYSLOG_ROOT = REPO / "target" / "interop" / "rsyslog"
RSYSLOGD = RSYSLOG_ROOT / "usr" / "sbin" / "rsyslogd"
RSYSLOG_MODULES = RSYSLOG_ROOT / "usr" / "lib" / "x86_64-linux-gnu" / "rsyslog"
SYSLOG_NG = shutil.which("syslog-ng") or "/usr/sbin/syslog-ng"

LINES = 2000
pytestmark = pytest.mark.timeout(120)


def _write_log(path: Path, tag: str, first: int, count: int) -> list[str]:
    lines = [f"{tag} line {i:05d} {uuid.uuid4().hex}" for i in range(first, first + count)]
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))
    return lines


def _read_topic(broker, topic: str, expected: int, timeout_s: float) -> list[str]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"ship-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for m in consumer.consume(500, timeout=0.5):
                if m.error() is None:
                    seen.append(m.value().decode())
            if len(seen) >= expected:
                # Anything still in flight would be a duplicate: read a little longer.
                for m in consumer.consume(500, timeout=2.0):
                    if m.error() is None:
                        seen.append(m.value().decode())
                break
    finally:
        consumer.close()
    return seen


def _run_daemon(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _check_once(shipped: list[str], written: list[str], daemon_log: Path, broker) -> None:
    missing = set(written) - set(shipped)
    assert not missing, (f"{len(missing)} of {len(written)} lines never arrived, e.g. {sorted(missing)[:3]}\n"
                         f"daemon log:\n{daemon_log.read_text(errors='replace')[-3000:]}\n"
                         f"broker log:\n{broker.log_tail()}")
    duplicates = len(shipped) - len(set(shipped))
    assert duplicates == 0, f"{duplicates} lines arrived more than once"
    assert len(shipped) == len(written)


def test_rsyslog_omkafka_ships_every_line_once(broker, admin, tmp_path):
    if not RSYSLOGD.exists():
        pytest.fail(f"{RSYSLOGD} missing: run tests/install-deps.sh", pytrace=False)
    topic = f"rsyslog-{uuid.uuid4().hex[:8]}"
    create_topic(broker, admin, topic, partitions=3)
    app_log = tmp_path / "app.log"
    written = _write_log(app_log, "rsyslog", 0, LINES // 2)
    work = tmp_path / "work"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imfile" mode="polling" PollingInterval="1")
module(load="omkafka")
template(name="line" type="string" string="%msg%")
input(type="imfile" File="{app_log}" Tag="app:" ruleset="ship" freshStartTail="off")
ruleset(name="ship") {{
  action(type="omkafka" broker=["{broker.bootstrap}"] topic="{topic}" template="line"
         partitions.auto="on" confParam=["acks=all", "queue.buffering.max.ms=50"])
}}
""")
    daemon_log = tmp_path / "rsyslogd.out"
    proc = _run_daemon([str(RSYSLOGD), "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid"),
                        "-M", str(RSYSLOG_MODULES)], daemon_log)
    try:
        time.sleep(2)
        assert proc.poll() is None, daemon_log.read_text(errors="replace")
        written += _write_log(app_log, "rsyslog", LINES // 2, LINES // 2)  # lines appended while it runs
        shipped = _read_topic(broker, topic, len(written), 60)
        assert proc.poll() is None, daemon_log.read_text(errors="replace")
    finally:
        _stop(proc)
    _check_once(shipped, written, daemon_log, broker)


def test_syslog_ng_kafka_c_ships_every_line_once(broker, admin, tmp_path):
    if not Path(SYSLOG_NG).exists():
        pytest.fail("syslog-ng missing: run tests/install-deps.sh", pytrace=False)
    topic = f"syslogng-{uuid.uuid4().hex[:8]}"
    create_topic(broker, admin, topic, partitions=3)
    app_log = tmp_path / "app.log"
    written = _write_log(app_log, "syslog-ng", 0, LINES // 2)
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(f"""@version: 3.38
options {{ stats-freq(0); }};
source s_app {{ file("{app_log}" flags(no-parse) follow-freq(0.2)); }};
destination d_strata {{
  kafka-c(bootstrap-servers("{broker.bootstrap}") topic("{topic}") message("$MSG")
          config("acks" => "all" "queue.buffering.max.ms" => "50"));
}};
log {{ source(s_app); destination(d_strata); }};
""")
    daemon_log = tmp_path / "syslog-ng.out"
    proc = _run_daemon([SYSLOG_NG, "-F", "--no-caps", "-f", str(conf), "-R", str(tmp_path / "persist"),
                        "-p", str(tmp_path / "syslog-ng.pid"), "-c", str(tmp_path / "syslog-ng.ctl"),
                        "--stderr"], daemon_log)
    try:
        time.sleep(2)
        assert proc.poll() is None, daemon_log.read_text(errors="replace")
        written += _write_log(app_log, "syslog-ng", LINES // 2, LINES // 2)
        shipped = _read_topic(broker, topic, len(written), 60)
        assert proc.poll() is None, daemon_log.read_text(errors="replace")
    finally:
        _stop(proc)
    _check_once(shipped, written, daemon_log, broker)

"""Burrow (Debian's package, with a ZooKeeper of its own) reads Strata's __consumer_offsets
and reports a group's lag correctly."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import _free_port, create_topic

ZOOKEEPER_JARS = "/usr/share/java/zookeeper.jar:/usr/share/java/*"


def _wait(what: str, condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}", pytrace=False)


@pytest.mark.timeout(150)
def test_burrow_reports_a_groups_lag(broker, admin, tmp_path: Path):
    if broker.is_mock:
        pytest.skip("Burrow reads the broker's __consumer_offsets")
    if not shutil.which("Burrow") or not Path("/usr/share/java/zookeeper.jar").exists():
        pytest.fail("Burrow and ZooKeeper are installed by tests/install-deps.sh", pytrace=False)
    topic = f"burrow-{uuid.uuid4().hex[:8]}"
    group = f"burrow-group-{uuid.uuid4().hex[:8]}"
    create_topic(broker, admin, topic, partitions=2)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(50):
        p.produce(topic, partition=0, value=f"a{i}")
        p.produce(topic, partition=1, value=f"b{i}")
    assert p.flush(30) == 0
    # The group read 30 records of partition 0 and 10 of partition 1: lag 20 + 40.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 30), TopicPartition(topic, 1, 10)], asynchronous=False)
    c.close()

    zk_port, http_port = _free_port(), _free_port()
    (tmp_path / "zk").mkdir()
    (tmp_path / "zoo.cfg").write_text(
        f"tickTime=2000\ndataDir={tmp_path / 'zk'}\nclientPort={zk_port}\nclientPortAddress=127.0.0.1\n"
        "admin.enableServer=false\n")
    (tmp_path / "burrow.toml").write_text(f"""
[general]
pidfile="{tmp_path / 'burrow.pid'}"
[logging]
level="info"
[zookeeper]
servers=["127.0.0.1:{zk_port}"]
timeout=6
root-path="/burrow"
[client-profile.strata]
client-id="burrow"
kafka-version="2.0.0"
[cluster.local]
class-name="kafka"
servers=["{broker.bootstrap}"]
client-profile="strata"
topic-refresh=5
offset-refresh=2
[consumer.local]
class-name="kafka"
cluster="local"
servers=["{broker.bootstrap}"]
client-profile="strata"
start-latest=false
[httpserver.default]
address="127.0.0.1:{http_port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
""")
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["java", "-cp", ZOOKEEPER_JARS, "-Dzookeeper.admin.enableServer=false",
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(tmp_path / "zoo.cfg")],
            stdout=(tmp_path / "zk.log").open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

        def zookeeper_serves():
            try:
                with socket.create_connection(("127.0.0.1", zk_port), timeout=1) as sock:
                    sock.sendall(b"srvr")
                    return b"Mode:" in sock.recv(512)
            except OSError:
                return False

        # Burrow gives up if ZooKeeper is not serving yet when it starts.
        _wait("ZooKeeper to serve", zookeeper_serves, 30)
        procs.append(subprocess.Popen(
            ["Burrow", "--config-dir", str(tmp_path)],
            stdout=(tmp_path / "burrow.log").open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

        def lag():
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{http_port}/v3/kafka/local/consumer/{group}/lag", timeout=2) as r:
                    status = json.load(r)["status"]
            except OSError:
                return None
            partitions = {p["partition"]: p for p in status.get("partitions") or []}
            if status.get("totallag") != 60 or len(partitions) != 2:
                return None
            return partitions

        try:
            partitions = _wait(f"Burrow to report a total lag of 60 for {group}", lag, 90)
        except BaseException:
            print((tmp_path / "burrow.log").read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{http_port}/v3/kafka/local/consumer/{group}/lag", timeout=2) as r:
                    print(r.read()[:2000])
            except OSError as e:
                print(f"burrow http: {e}")
            raise
        assert partitions[0]["current_lag"] == 20
        assert partitions[1]["current_lag"] == 40
        assert partitions[0]["end"]["offset"] == 30
        assert partitions[1]["end"]["offset"] == 10
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

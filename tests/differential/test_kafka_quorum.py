"""KIP-853 (dynamic controller quorum) through Kafka's own Java code against Strata: the Java
Admin of kafka-clients 4.4.0 (`describeMetadataQuorum`, `addRaftVoter`, `removeRaftVoter`,
`describeFeatures`; QuorumAdmin.java, run as a single-file source program) and
`kafka-metadata-quorum.sh`'s class (`describe --status`, `describe --replication`,
`add-controller`, `remove-controller`), on a 3-voter Strata cluster with a fourth node that
joins as an observer through `--controller-bootstrap-servers`.

The refusals asserted here (DUPLICATE_VOTER, VOTER_NOT_FOUND, REQUEST_TIMED_OUT for a node that
is not an observer with that directory id) are the ones Apache Kafka 4.4.0's leader answers
the same calls with (its AddVoterHandler and RemoveVoterHandler); test_kafka_tools.py checks
`kraft.version` 1 against Kafka itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

import brokers

interop = brokers.interop
QUORUM_ADMIN = brokers.HERE / "QuorumAdmin.java"
QUORUM_TOOL = "org.apache.kafka.tools.MetadataQuorumCommand"
CALL_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three Strata voters and node 4, an observer that joined through node 1's controller
    address. Yields (cluster, node 4's controller endpoint, node 4's data directory)."""
    if "strata" not in os.environ.get("TOOLS_BROKERS", "kafka,strata").split(","):
        pytest.skip("TOOLS_BROKERS leaves Strata out")
    tmp = tmp_path_factory.mktemp("quorum")
    c = interop.start_cluster(tmp, 3, brokers.BROKER_PROPERTIES)
    try:
        seed = c.nodes[0].argv
        voters = seed[seed.index("--voters") + 1]
        first_voter = voters.split(",")[0].split("@", 1)[1]
        port, controller = interop._free_port(), f"127.0.0.1:{interop._free_port()}"
        node_tmp = tmp / "node-4"
        (node_tmp / "data").mkdir(parents=True)
        argv = [seed[0], "serve", "--config", seed[seed.index("--config") + 1], "--node-id", "4",
                "--data-dir", str(node_tmp / "data"), "--listen", f"127.0.0.1:{port}",
                "--advertise", f"127.0.0.1:{port}", "--voters", voters,
                "--controller-listen", controller, "--controller-bootstrap-servers", first_voter]
        argv += shlex.split(os.environ.get("STRATA_ARGS", ""))
        node4 = interop.ClusterNode(4, port, argv, node_tmp)
        c.nodes.append(node4)
        node4.start()
        yield c, controller, node_tmp / "data"
    finally:
        c.stop()


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    """QuorumAdmin.java compiled once (javac next to java), for a class path."""
    out = tmp_path_factory.mktemp("quorum-admin")
    javac = str(Path(brokers.JAVA).with_name("javac")) if os.sep in brokers.JAVA else "javac"
    r = subprocess.run([javac, "-d", str(out), "-cp", brokers.kafka_classpath(), str(QUORUM_ADMIN)],
                       capture_output=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"javac QuorumAdmin.java: {r.stderr.decode(errors='replace')}"
    return out


def admin(classes: Path, bootstrap: str, *args: str) -> dict:
    """QuorumAdmin's JSON answer."""
    argv = [brokers.JAVA, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
            f"{classes}{os.pathsep}{brokers.kafka_classpath()}", "QuorumAdmin", bootstrap, *args]
    r = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"QuorumAdmin {' '.join(args)}: exit {r.returncode}\n{out}\n" \
                              f"{r.stderr.decode(errors='replace')[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


# REQUEST_TIMED_OUT while the previous voter change is still being committed: Kafka's leader
# answers it too, and clients retry.
PENDING = re.compile(r"pending|in progress|undergoing|uncommitted", re.IGNORECASE)


def change(classes: Path, bootstrap: str, *args: str) -> dict:
    """An add or remove through QuorumAdmin, retried for 20 s while another change is pending."""
    deadline = time.monotonic() + 20
    while True:
        r = admin(classes, bootstrap, *args)
        if r["error"] != "TimeoutException" or not PENDING.search(r.get("message") or "") \
                or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def tool(log4j, bootstrap: str, *args: str) -> str:
    """kafka-metadata-quorum's standard output; it must exit with 0 (retried for 20 s while
    another voter change is pending)."""
    argv = brokers.java_argv(QUORUM_TOOL, log4j, "--bootstrap-server", bootstrap, *args)
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if r.returncode == 0 or not PENDING.search(r.stderr.decode(errors="replace")) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"kafka-metadata-quorum {' '.join(args)}: exit {r.returncode}\n{out}\n" \
                              f"{r.stderr.decode(errors='replace')[-3000:]}"
    return out


def wait_quorum(classes: Path, bootstrap: str, accept, what: str, limit_s: float = 30.0) -> dict:
    """Describes the quorum until `accept` takes the answer, which it returns."""
    deadline = time.monotonic() + limit_s
    while True:
        q = admin(classes, bootstrap, "describe")
        if q["leaderId"] >= 0 and accept(q):
            return q
        assert time.monotonic() < deadline, f"the quorum did not reach {what} within {limit_s:.0f}s: {q}"
        time.sleep(0.5)


def ids(replicas: list[dict]) -> list[int]:
    return sorted(r["id"] for r in replicas)


def directory(q: dict, node_id: int) -> str:
    return next(r["directoryId"] for r in q["voters"] + q["observers"] if r["id"] == node_id)


# The cluster's start, about fifteen JVM runs and four voter changes.
@pytest.mark.timeout(300)
def test_kip853_with_kafka_admin_and_metadata_quorum_tool(cluster, classes, tmp_path):
    c, controller4, data4 = cluster
    bootstrap = c.bootstrap
    log4j = brokers.write_log4j(tmp_path)
    zero = "AAAAAAAAAAAAAAAAAAAAAA"

    # Node 4 follows the log as an observer; every replica has a directory id and an endpoint.
    q = wait_quorum(classes, bootstrap, lambda q: ids(q["voters"]) == [1, 2, 3] and ids(q["observers"]) == [4]
                    and all(r["directoryId"] != zero for r in q["voters"] + q["observers"])
                    and sorted(q["nodes"]) == ["1", "2", "3", "4"], "3 voters and observer 4")
    voters = c.nodes[0].argv[c.nodes[0].argv.index("--voters") + 1]
    endpoints = {int(v.split("@")[0]): f"CONTROLLER://{v.split('@')[1]}" for v in voters.split(",")}
    endpoints[4] = f"CONTROLLER://{controller4}"
    assert {int(k): v for k, v in q["nodes"].items()} == {k: [v] for k, v in endpoints.items()}, q
    dirs = {n: directory(q, n) for n in (1, 2, 3, 4)}

    features = admin(classes, bootstrap, "features")
    assert features["finalized"].get("kraft.version") == 1, features
    assert features["supported"].get("kraft.version") == [0, 1], features

    # kafka-metadata-quorum describe names the voters and the observer with their endpoints.
    out = tool(log4j, bootstrap, "describe", "--status")
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}
    assert int(fields["LeaderId"]) in (1, 2, 3) and int(fields["HighWatermark"]) > 0, out
    for n in (1, 2, 3):
        assert f'{{"id": {n}, "directoryId": "{dirs[n]}", "endpoints": ["{endpoints[n]}"]}}' \
            in fields["CurrentVoters"], out
    observer4 = f'{{"id": 4, "directoryId": "{dirs[4]}", "endpoints": ["{endpoints[4]}"]}}'
    assert fields["CurrentObservers"] == f"[{observer4}]", out
    out = tool(log4j, bootstrap, "describe", "--replication")
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert sorted((int(r[0]), r[1], r[-1]) for r in rows) == sorted(
        [(int(fields["LeaderId"]), dirs[int(fields["LeaderId"])], "Leader")]
        + [(n, dirs[n], "Follower") for n in (1, 2, 3) if n != int(fields["LeaderId"])]
        + [(4, dirs[4], "Observer")]), out

    # Refusals, as Kafka's leader answers them.
    host4, port4 = controller4.rsplit(":", 1)
    r = admin(classes, bootstrap, "add", "2", dirs[2], "CONTROLLER", "127.0.0.1", "1")
    assert r["error"] == "DuplicateVoterException", r
    r = admin(classes, bootstrap, "remove", "9", dirs[1])
    assert r["error"] == "VoterNotFoundException", r
    r = admin(classes, bootstrap, "remove", "1", dirs[2])
    assert r["error"] == "VoterNotFoundException", r
    r = admin(classes, bootstrap, "add", "4", zero, "CONTROLLER", host4, port4)
    assert r["error"] == "InvalidRequestException", r
    # Not the directory id observer 4 fetches with, and not an observer at all.
    r = admin(classes, bootstrap, "add", "4", dirs[1], "CONTROLLER", host4, port4)
    assert r["error"] == "TimeoutException", r
    r = admin(classes, bootstrap, "add", "7", dirs[1], "CONTROLLER", "127.0.0.1", port4)
    assert r["error"] == "TimeoutException", r
    assert ids(admin(classes, bootstrap, "describe")["voters"]) == [1, 2, 3]

    # add-controller reads node 4's configuration: its id, controller listener and the
    # directory id in meta.properties of its data directory, which Strata writes as Kafka does.
    config = tmp_path / "controller-4.properties"
    config.write_text(f"node.id=4\nprocess.roles=broker,controller\ncontroller.listener.names=CONTROLLER\n"
                      f"listeners=CONTROLLER://{controller4}\nlog.dirs={data4}\n")
    out = tool(log4j, bootstrap, "--command-config", str(config), "add-controller")
    assert out.strip() == f"Added controller 4 with directory id {dirs[4]} and endpoints: {endpoints[4]}", out
    q = wait_quorum(classes, bootstrap, lambda q: ids(q["voters"]) == [1, 2, 3, 4], "voters 1-4")
    assert directory(q, 4) == dirs[4] and q["nodes"]["4"] == [endpoints[4]], q

    # The Java Admin takes it out again and puts it back.
    assert change(classes, bootstrap, "remove", "4", dirs[4]) == {"error": None}
    # Node 4 keeps following the log as an observer, as a removed Kafka controller does.
    wait_quorum(classes, bootstrap, lambda q: ids(q["voters"]) == [1, 2, 3]
                and [(o["id"], o["directoryId"]) for o in q["observers"]] == [(4, dirs[4])],
                "voters 1-3 and observer 4 after removing 4")
    r = change(classes, bootstrap, "add", "4", dirs[4], "CONTROLLER", host4, port4)
    assert r == {"error": None}, r
    wait_quorum(classes, bootstrap, lambda q: ids(q["voters"]) == [1, 2, 3, 4], "voters 1-4 after adding 4 again")

    # remove-controller takes voter 1 out; the quorum keeps a leader among 2, 3 and 4.
    out = tool(log4j, bootstrap, "remove-controller", "--controller-id", "1", "--controller-directory-id", dirs[1])
    assert out.strip() == f"Removed KRaft controller 1 with directory id {dirs[1]}", out
    q = wait_quorum(classes, bootstrap, lambda q: ids(q["voters"]) == [2, 3, 4] and q["leaderId"] in (2, 3, 4),
                    "voters 2-4 with a leader among them")
    assert [(o["id"], o["directoryId"]) for o in q["observers"]] == [(1, dirs[1])], q
    out = tool(log4j, bootstrap, "describe", "--status")
    assert re.search(r'^CurrentVoters:\s+\[\{"id": 2, .*\{"id": 3, .*\{"id": 4, ', out, re.MULTILINE), out
    assert '"id": 1,' not in out.split("CurrentVoters:")[1].split("\n")[0], out

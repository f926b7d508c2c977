"""spring-kafka against Strata: the Spring Boot app in tests/spring runs its scenario
(KafkaTemplate, a concurrent @KafkaListener, a batch listener, DefaultErrorHandler with
DeadLetterPublishingRecoverer, @RetryableTopic back-off topics) and exits 0 only when every one
of its checks passed. Once against the session's single node, once against a three-node cluster
(replication factor 3) in which the coordinator of the orders group is killed with SIGKILL
mid-run and started again: every record must still arrive. And its transactions profile (a
listener in Kafka transactions that consumes one topic and sends to another, records that make
it throw rolled back) on one node, and on three nodes with the transaction coordinator of one
of its producers killed and restarted mid-run: exactly once either way."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import matrix
from conftest import REPO, start_cluster, transactions

SPRING_JAR = Path(os.environ.get("SPRING_SCENARIO_JAR", REPO / "target" / "spring" / "strata-spring-scenario.jar"))
SCENARIO_TIMEOUT_S = 90


def _argv(bootstrap: str, prefix: str, *settings: str) -> list[str]:
    if not SPRING_JAR.exists():
        pytest.fail(f"{SPRING_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    return matrix.java_argv(SPRING_JAR) + [
        f"--spring.kafka.bootstrap-servers={bootstrap}", f"--scenario.prefix={prefix}",
        f"--scenario.timeout-seconds={SCENARIO_TIMEOUT_S}", *settings]


def _report(out: Path) -> str:
    text = out.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.startswith(("CHECK", "RESULT", "NOTE", "MARK"))]
    return "\n".join(lines) + "\n--- app output tail:\n" + text[-4000:]


def _wait(proc: subprocess.Popen, out: Path, limit_s: float) -> int:
    try:
        return proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"the Spring app did not exit within {limit_s:.0f}s\n{_report(out)}", pytrace=False)


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_spring_kafka_scenario_on_one_node(broker, tmp_path):
    if broker.is_mock:
        pytest.skip("the scenario creates topics and needs a broker's groups")
    out = tmp_path / "spring.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(_argv(broker.bootstrap, f"spring-{uuid.uuid4().hex[:8]}"),
                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
    broker.check_alive()
    assert rc == 0, f"the spring-kafka scenario failed (exit {rc})\n{_report(out)}"


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 90)
def test_spring_kafka_scenario_on_three_nodes_with_a_node_restarted(tmp_path):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    cluster = start_cluster(tmp_path / "cluster", 3)
    prefix = f"spring-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "spring.out"
    proc = None
    try:
        with out.open("wb") as f:
            # Orders spread over 12 s so that the restart falls among sends and deliveries;
            # redelivery of records whose commit the restart lost is allowed (at-least-once),
            # loss is not.
            proc = subprocess.Popen(
                _argv(cluster.bootstrap, prefix, "--scenario.replication=3", "--scenario.records=3000",
                      "--scenario.send-seconds=12", "--scenario.allow-redelivery=true"),
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "MARK orders-half-sent" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not get half way (exit {proc.poll()})\n{_report(out)}", pytrace=False)
            time.sleep(0.1)
        victim = _coordinator_of(cluster.bootstrap, f"{prefix}-orders") or 2
        cluster.node(victim).kill()
        time.sleep(3)
        cluster.node(victim).start()
        rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
        report = _report(out)
        assert rc == 0, (f"the spring-kafka scenario failed after node {victim} was restarted (exit {rc})\n"
                         f"{report}\n{cluster.log_tails()}")
        notes = [ln for ln in out.read_text(errors="replace").splitlines() if ln.startswith(("NOTE", "RESULT"))]
        print(f"node {victim} (the orders group's coordinator) killed and restarted mid-run; " + "; ".join(notes))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        cluster.stop()


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_spring_kafka_transactions_on_one_node(broker, tmp_path):
    if broker.is_mock:
        pytest.skip("the scenario needs a broker's transactions")
    out = tmp_path / "spring.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(_argv(broker.bootstrap, f"spring-{uuid.uuid4().hex[:8]}",
                                      "--spring.profiles.active=transactions", "--scenario.records=1000"),
                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
    broker.check_alive()
    assert rc == 0, f"the spring-kafka transactions scenario failed (exit {rc})\n{_report(out)}"


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 90)
def test_spring_kafka_transactions_on_three_nodes_with_a_node_restarted(tmp_path):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)
    cluster = start_cluster(tmp_path / "cluster", 3)
    prefix = f"spring-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "spring.out"
    proc = None
    try:
        with out.open("wb") as f:
            # Input spread over 10 s so that the restart falls among transactions. The listener
            # may be called again for a record whose transaction the restart aborted; its
            # output must still be committed exactly once.
            proc = subprocess.Popen(
                _argv(cluster.bootstrap, prefix, "--spring.profiles.active=transactions", "--scenario.replication=3",
                      "--scenario.records=1000", "--scenario.send-seconds=10", "--scenario.allow-redelivery=true"),
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "MARK tx-half-sent" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not get half way (exit {proc.poll()})\n{_report(out)}", pytrace=False)
            time.sleep(0.1)
        # The transaction coordinator of one of the listener's producers (ids <prefix>-tx-<n>).
        txns = [t for t in transactions(cluster.bootstrap, f"{prefix}-tx-") if t["state"] != "Empty"] \
            or transactions(cluster.bootstrap, f"{prefix}-tx-")
        victim = txns[0]["coordinator"] if txns else 2
        cluster.node(victim).kill()
        time.sleep(3)
        cluster.node(victim).start()
        rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
        report = _report(out)
        assert rc == 0, (f"the spring-kafka transactions scenario failed after node {victim} was restarted "
                         f"(exit {rc})\n{report}\n{cluster.log_tails()}")
        notes = [ln for ln in out.read_text(errors="replace").splitlines() if ln.startswith(("NOTE", "RESULT"))]
        print(f"node {victim} (transaction coordinator of {[t['id'] for t in txns if t['coordinator'] == victim]}) "
              f"killed and restarted mid-run; " + "; ".join(notes))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        cluster.stop()


def _coordinator_of(bootstrap: str, group: str) -> int | None:
    """The node coordinating `group` now, or None when the admin client cannot tell."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2, "log.connection.close": False})
    try:
        return admin.describe_consumer_groups([group])[group].result(timeout=10).coordinator.id
    except Exception:  # noqa: BLE001
        return None

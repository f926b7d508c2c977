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


def _start(argv: list[str], out: Path) -> subprocess.Popen:
    """The app started with `argv`, its output (stdout and stderr) to `out`."""
    with out.open("wb") as f:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)


def _run_on_one_node(broker, tmp_path: Path, what: str, *settings: str) -> None:
    """Runs the app with `settings` against the session's node, which must exit 0 and leave
    the node alive."""
    out = tmp_path / "spring.out"
    proc = _start(_argv(broker.bootstrap, f"spring-{uuid.uuid4().hex[:8]}", *settings), out)
    rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
    broker.check_alive()
    assert rc == 0, f"the {what} failed (exit {rc})\n{_report(out)}"


def _run_with_a_node_restarted(tmp_path: Path, half_way: str, choose_victim, what: str, *settings: str) -> None:
    """Runs the app with `settings` on a new three-node cluster (replication factor 3); when it
    prints `MARK <half_way>`, kills with SIGKILL the node `choose_victim(cluster, prefix)` names
    (with what that node is) and starts it again 3 s later. The app must still exit 0."""
    cluster = start_cluster(tmp_path / "cluster", 3)
    prefix = f"spring-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "spring.out"
    proc = None
    try:
        proc = _start(_argv(cluster.bootstrap, prefix, "--scenario.replication=3", *settings), out)
        deadline = time.monotonic() + 60
        while f"MARK {half_way}" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not get half way (exit {proc.poll()})\n{_report(out)}", pytrace=False)
            time.sleep(0.1)
        victim, role = choose_victim(cluster, prefix)
        cluster.node(victim).kill()
        time.sleep(3)
        cluster.node(victim).start()
        rc = _wait(proc, out, SCENARIO_TIMEOUT_S + 40)
        report = _report(out)
        assert rc == 0, (f"the {what} failed after node {victim} was restarted (exit {rc})\n"
                         f"{report}\n{cluster.log_tails()}")
        notes = [ln for ln in out.read_text(errors="replace").splitlines() if ln.startswith(("NOTE", "RESULT"))]
        print(f"node {victim} ({role}) killed and restarted mid-run; " + "; ".join(notes))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        cluster.stop()


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_spring_kafka_scenario_on_one_node(broker, tmp_path):
    if broker.is_mock:
        pytest.skip("the scenario creates topics and needs a broker's groups")
    _run_on_one_node(broker, tmp_path, "spring-kafka scenario")


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 90)
def test_spring_kafka_scenario_on_three_nodes_with_a_node_restarted(tmp_path):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")

    def orders_coordinator(cluster, prefix):
        return _coordinator_of(cluster.bootstrap, f"{prefix}-orders") or 2, "the orders group's coordinator"

    # Orders spread over 12 s so that the restart falls among sends and deliveries; redelivery
    # of records whose commit the restart lost is allowed (at-least-once), loss is not.
    _run_with_a_node_restarted(tmp_path, "orders-half-sent", orders_coordinator, "spring-kafka scenario",
                               "--scenario.records=3000", "--scenario.send-seconds=12",
                               "--scenario.allow-redelivery=true")


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 60)
def test_spring_kafka_transactions_on_one_node(broker, tmp_path):
    if broker.is_mock:
        pytest.skip("the scenario needs a broker's transactions")
    _run_on_one_node(broker, tmp_path, "spring-kafka transactions scenario",
                     "--spring.profiles.active=transactions", "--scenario.records=1000")


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 90)
def test_spring_kafka_transactions_on_three_nodes_with_a_node_restarted(tmp_path):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("a Strata cluster")
    if not matrix.JAVA_CLIENT_JAR.exists():
        pytest.fail(f"{matrix.JAVA_CLIENT_JAR} is missing (run tests/install-deps.sh)", pytrace=False)

    def transaction_coordinator(cluster, prefix):
        # The transaction coordinator of one of the listener's producers (ids <prefix>-tx-<n>).
        txns = [t for t in transactions(cluster.bootstrap, f"{prefix}-tx-") if t["state"] != "Empty"] \
            or transactions(cluster.bootstrap, f"{prefix}-tx-")
        victim = txns[0]["coordinator"] if txns else 2
        return victim, f"transaction coordinator of {[t['id'] for t in txns if t['coordinator'] == victim]}"

    # Input spread over 10 s so that the restart falls among transactions. The listener may be
    # called again for a record whose transaction the restart aborted; its output must still be
    # committed exactly once.
    _run_with_a_node_restarted(tmp_path, "tx-half-sent", transaction_coordinator,
                               "spring-kafka transactions scenario", "--spring.profiles.active=transactions",
                               "--scenario.records=1000", "--scenario.send-seconds=10",
                               "--scenario.allow-redelivery=true")


def _coordinator_of(bootstrap: str, group: str) -> int | None:
    """The node coordinating `group` now, or None when the admin client cannot tell."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2, "log.connection.close": False})
    try:
        return admin.describe_consumer_groups([group])[group].result(timeout=10).coordinator.id
    except Exception:  # noqa: BLE001
        return None

"""Fixtures for the cross-client interop tests: a real Strata broker process and topic creation.

Environment:
  STRATA_BIN        broker binary (default <repo>/target/release/strata)
  STRATA_ARGS       extra arguments appended to `strata serve ...` (shell-quoted)
  INTEROP_BROKER    "strata" (default) or "mock": librdkafka's mock cluster instead of Strata,
                    which checks the clients and the test itself, not the broker
  INTEROP_RECORDS   records per produced topic (default 20)
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(INTEROP_DIR / "clients"))

import matrix  # noqa: E402

REPO = matrix.REPO
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and was not handed out before in this
    process: the kernel may give a released ephemeral port to the next bind, so two ports
    picked for one node could otherwise be the same."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pytest_report_header(config):
    """Which client versions this run used."""
    def run(argv):
        try:
            r = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            return r.stdout.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unavailable ({e})"

    versions = []
    try:
        import confluent_kafka
        versions.append(f"confluent-kafka {confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})")
    except ImportError as e:
        versions.append(f"confluent-kafka unavailable ({e})")
    from importlib.metadata import PackageNotFoundError, version
    for name in ("kafka-python", "aiokafka"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} not installed")
    kcat = run(["kcat", "-V"])
    versions.append(next((ln.replace("Version ", "kcat ") for ln in kcat.splitlines() if ln.startswith("Version")), kcat)
                    .split(" builtin")[0] + ")")
    versions.append("kafkajs " + run(["node", "-p", f"require('{INTEROP_DIR / 'js' / 'node_modules' / 'kafkajs' / 'package.json'}').version"])
                    + ", node " + run(["node", "--version"]))
    versions.append("sarama " + run(["dpkg-query", "-W", "-f=${Version}", "golang-github-shopify-sarama-dev"]))
    try:
        java = subprocess.run([matrix.java_argv(matrix.JAVA_CLIENT_JAR)[0], "-version"], capture_output=True,
                              timeout=10, stdin=subprocess.DEVNULL).stderr.decode(errors="replace").splitlines()
        java_version = java[0] if java else "unknown"
    except (OSError, subprocess.TimeoutExpired) as e:
        java_version = f"unavailable ({e})"
    versions.append(f"{matrix.CLIENTS['java'].library}, Kafka Streams 4.3.1, spring-kafka 4.1.2 on Spring Boot "
                    f"4.1.2; {java_version}")
    return "interop clients: " + "; ".join(versions)


@dataclass
class Broker:
    kind: str
    host: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    argv: list[str]
    # Set once the broker stopped answering; later tests fail at once instead of waiting again.
    unresponsive: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_mock(self) -> bool:
        return self.kind == "mock"

    def log_tail(self, n: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as e:
            return f"(no log: {e})"
        text = data[-n:].decode("utf-8", "replace")
        return text if len(data) <= n else "...\n" + text

    def check_alive(self) -> None:
        if self.unresponsive:
            pytest.fail(f"not run: the {self.kind} broker stopped answering earlier ({self.unresponsive})",
                        pytrace=False)
        rc = self.proc.poll()
        if rc is not None:
            pytest.fail(f"the {self.kind} broker exited with status {rc}; "
                        f"command: {shlex.join(self.argv)}\nlog tail:\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def start_strata(tmp: Path, properties: dict[str, object] | None = None) -> Broker:
    """A Strata broker of its own for tests that need broker configs: `properties` (Kafka
    property names) go into a TOML file passed with --config. Stop it with `.stop()`."""
    tmp.mkdir(parents=True, exist_ok=True)
    extra: list[str] = []
    if properties:
        config = tmp / "strata.toml"
        config.write_text("".join(f'"{k}" = {json.dumps(v)}\n' for k, v in properties.items()))
        extra = ["--config", str(config)]
    return _start_strata(tmp, extra)


def _start_strata(tmp: Path, extra: list[str] | None = None) -> Broker:
    binary = Path(os.environ.get("STRATA_BIN", REPO / "target" / "release" / "strata"))
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"Strata binary {binary} not found or not executable "
                    f"(build it with `cargo build --release`, or set STRATA_BIN)", pytrace=False)
    port = _free_port()
    data_dir = tmp / "data"
    data_dir.mkdir()
    # A one-voter metadata quorum of its own, on a free port (the default, 9093, would
    # collide between brokers of one session).
    argv = [str(binary), "serve", "--node-id", "1", "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}",
            "--voters", f"1@127.0.0.1:{_free_port()}"]
    argv += extra or []
    argv += shlex.split(os.environ.get("STRATA_ARGS", ""))
    log_path = tmp / "strata.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    log.close()
    broker = Broker("strata", "127.0.0.1", port, proc, log_path, argv)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _accepts("127.0.0.1", port):
        if proc.poll() is not None:
            pytest.fail(f"strata exited with status {proc.returncode} before listening; "
                        f"command: {shlex.join(argv)}\nlog tail:\n{broker.log_tail()}", pytrace=False)
        if time.monotonic() > deadline:
            broker.stop()
            pytest.fail(f"strata did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f}s; "
                        f"command: {shlex.join(argv)}\nlog tail:\n{broker.log_tail()}", pytrace=False)
        time.sleep(0.1)
    return broker


@dataclass
class ClusterNode:
    """One `strata serve` of a Cluster; `kill()` is SIGKILL, `start()` starts it again on
    the same data directory and ports."""
    node_id: int
    port: int
    argv: list[str]
    tmp: Path
    proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.tmp / "strata.log"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"node {self.node_id} did not start; command: {shlex.join(self.argv)}\n"
                            f"log tail:\n{self.log_path.read_bytes()[-3000:].decode(errors='replace')}",
                            pytrace=False)
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    nodes: list[ClusterNode]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def log_tails(self, n: int = 2000) -> str:
        return "\n".join(f"--- node {x.node_id} log tail:\n"
                         + x.log_path.read_bytes()[-n:].decode(errors="replace") for x in self.nodes)


def start_cluster(tmp: Path, size: int = 3, properties: dict[str, object] | None = None) -> Cluster:
    """`size` Strata nodes on 127.0.0.1, each a voter of one metadata quorum and a broker, with
    `properties` (Kafka names) in each node's config file. Returns once every node lists all
    `size` brokers. Stop it with `.stop()`."""
    binary = Path(os.environ.get("STRATA_BIN", REPO / "target" / "release" / "strata"))
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"Strata binary {binary} not found or not executable (set STRATA_BIN)", pytrace=False)
    ports = [_free_port() for _ in range(size)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{_free_port()}" for i in range(size))
    nodes = []
    for i in range(size):
        node_tmp = tmp / f"node-{i + 1}"
        (node_tmp / "data").mkdir(parents=True)
        config = node_tmp / "strata.toml"
        config.write_text("".join(f'"{k}" = {json.dumps(v)}\n' for k, v in (properties or {}).items()))
        argv = [str(binary), "serve", "--config", str(config), "--node-id", str(i + 1),
                "--data-dir", str(node_tmp / "data"), "--listen", f"127.0.0.1:{ports[i]}",
                "--advertise", f"127.0.0.1:{ports[i]}", "--voters", voters]
        argv += shlex.split(os.environ.get("STRATA_ARGS", ""))
        nodes.append(ClusterNode(i + 1, ports[i], argv, node_tmp))
    cluster = Cluster(nodes)
    try:
        for n in nodes:
            n.start()
        from confluent_kafka.admin import AdminClient
        deadline = time.monotonic() + 30
        for n in nodes:
            admin = AdminClient({"bootstrap.servers": n.bootstrap, "log_level": 2, "log.connection.close": False})
            while True:
                try:
                    if len(admin.list_topics(timeout=5).brokers) == size:
                        break
                except Exception:  # noqa: BLE001
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"node {n.node_id} does not list {size} brokers after 30s\n{cluster.log_tails()}",
                                pytrace=False)
                time.sleep(0.2)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def transactions(bootstrap: str, prefix: str) -> list[dict]:
    """The transactional ids starting with `prefix` as the cluster's transaction coordinators
    describe them (the Java client's ListTransactions and DescribeTransactions): dicts with
    id, coordinator (node id), state and partitions."""
    r = subprocess.run(matrix.java_argv(matrix.JAVA_CLIENT_JAR) + [
        "transactions", "--bootstrap", bootstrap, "--prefix", prefix],
        capture_output=True, timeout=40, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"transactions: exit {r.returncode}\n{r.stderr.decode(errors='replace')[-2000:]}"
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]


def _start_mock(tmp: Path) -> Broker:
    # The mock answers kafka-python 3's ApiVersions v3/v4 with a body it cannot decode.
    os.environ.setdefault("INTEROP_KAFKA_PYTHON_API_VERSION", "2.3")
    argv = [sys.executable, str(INTEROP_DIR / "mock_broker.py")]
    log_path = tmp / "mock.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while not line.startswith(b"BOOTSTRAP "):
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(timeout=left):
            proc.kill()
            pytest.fail("mock broker did not start", pytrace=False)
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"mock broker exited: {log_path.read_text(errors='replace')}", pytrace=False)
    host, port = line.split()[1].decode().rsplit(":", 1)
    return Broker("mock", host, int(port), proc, log_path, argv)


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Broker:
    kind = os.environ.get("INTEROP_BROKER", "strata")
    tmp = tmp_path_factory.mktemp(f"{kind}-broker")
    if kind == "strata":
        b = _start_strata(tmp)
    elif kind == "mock":
        b = _start_mock(tmp)
    else:
        pytest.fail(f"INTEROP_BROKER must be strata or mock, not {kind!r}", pytrace=False)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def admin(broker):
    from confluent_kafka.admin import AdminClient
    # Quiet: its connection logs outlive the broker at teardown; errors surface as exceptions.
    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000,
                        "log.connection.close": False, "log_level": 2})


def create_topic(broker: Broker, admin, name: str, partitions: int = 3) -> int:
    """Create `name` (RF 1) through the admin API and wait until its metadata shows leaders.
    Returns the partition count. librdkafka's mock answers no CreateTopics; there the topic is
    auto-created (with the mock's default partition count) by the metadata request."""
    from confluent_kafka.admin import NewTopic

    broker.check_alive()
    if not broker.is_mock:
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                      operation_timeout=10, request_timeout=15)
        try:
            futures[name].result(timeout=20)
        except Exception as e:  # noqa: BLE001
            broker.check_alive()
            if "timed out" in repr(e).lower() or "timeout" in type(e).__name__.lower():
                broker.unresponsive = f"CreateTopics({name}) timed out"
            pytest.fail(f"CreateTopics({name}, {partitions} partitions, RF 1) failed: {e!r}", pytrace=False)
    deadline = time.monotonic() + 15
    last = "no metadata"
    raised = False
    while True:
        try:
            md = admin.list_topics(topic=name, timeout=5)
            t = md.topics.get(name)
            if t is not None and t.error is None and t.partitions and all(
                    p.leader >= 0 for p in t.partitions.values()):
                if not broker.is_mock and len(t.partitions) != partitions:
                    pytest.fail(f"topic {name} has {len(t.partitions)} partitions, created with {partitions}",
                                pytrace=False)
                return len(t.partitions)
            last = f"topic metadata: {t.error if t is not None else 'absent'}"
            raised = False
        except Exception as e:  # noqa: BLE001
            last = repr(e)
            raised = True
        broker.check_alive()
        if time.monotonic() > deadline:
            if raised:
                broker.unresponsive = f"Metadata for {name} failed for 15s: {last}"
            pytest.fail(f"topic {name} not ready in metadata after 15s: {last}", pytrace=False)
        time.sleep(0.2)

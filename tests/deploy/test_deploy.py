"""deploy/: each file passes its validator, and the topologies it describes run for real.

The compose file's and the StatefulSet's commands are run as written (same flags, same ports)
inside a network namespace made here, whose /etc/hosts (`ip netns exec` mounts
/etc/netns/<name>/hosts) gives every node name a loopback address of its own; the only change
is the wildcard bind address 0.0.0.0, which becomes the node's own address so that three
nodes share one namespace. Needs root (CAP_NET_ADMIN) for the namespace, as CI has.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
STRATA = os.environ.get("STRATA_BIN", str(REPO / "target" / "release" / "strata"))
VENV_BIN = Path(os.environ.get("INTEROP_VENV", REPO / "tests" / "interop" / ".venv")) / "bin"

pytestmark = pytest.mark.timeout(180)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


# ------------------------------------------------------------------ validators


def test_kubernetes_manifests_pass_schema_validation(tmp_path):
    validate = str(VENV_BIN / "kubernetes-validate")
    good = run([validate, "--strict", str(DEPLOY / "kubernetes" / "strata.yaml")])
    assert good.returncode == 0, good.stdout + good.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "strata.yaml").read_text())]
    assert sorted(kinds) == ["PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    # The validator does refuse a wrong manifest (a misspelt field under strict validation).
    broken = tmp_path / "broken.yaml"
    broken.write_text((DEPLOY / "kubernetes" / "strata.yaml").read_text().replace("serviceName:", "serviceNam:"))
    bad = run([validate, "--strict", str(broken)])
    assert bad.returncode != 0, bad.stdout


def test_compose_file_passes_docker_compose_config(tmp_path):
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian package) is installed by tests/install-deps.sh"
    good = run([compose, "-f", str(DEPLOY / "compose" / "docker-compose.yml"), "config", "-q"])
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((DEPLOY / "compose" / "docker-compose.yml").read_text().replace("restart: unless-stopped", "restart: [unless-stopped"))
    bad = run([compose, "-f", str(broken), "config", "-q"])
    assert bad.returncode != 0


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is installed by tests/install-deps.sh"
    unit = (DEPLOY / "systemd" / "strata.service").read_text()
    assert "ExecStart=/usr/local/bin/strata serve" in unit
    # verify checks that ExecStart's program exists: point it at the binary under test.
    local = tmp_path / "strata.service"
    local.write_text(unit.replace("/usr/local/bin/strata", STRATA))
    good = run([analyze, "verify", str(local)])
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(unit.replace("/usr/local/bin/strata", str(tmp_path / "no-such-binary")))
    bad = run([analyze, "verify", str(broken)])
    assert bad.returncode != 0


def test_systemd_config_file_starts_a_node(tmp_path):
    """The unit's ExecStart with the shipped server.properties serves on 127.0.0.1:9092-style
    settings; here it binds a loopback address of a private namespace."""
    unit = (DEPLOY / "systemd" / "strata.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    props = (DEPLOY / "systemd" / "server.properties").read_text()
    args = shlex.split(exec_start)[1:]
    args[args.index("--config") + 1] = str(tmp_path / "server.properties")
    args[args.index("--data-dir") + 1] = str(tmp_path / "data")
    (tmp_path / "server.properties").write_text(props)
    with Namespace({}) as ns:
        node = ns.start([STRATA, *args], tmp_path / "node.log")
        ns.wait_ready("127.0.0.1:9644", node)
        # Auto-created with the file's num.partitions=3.
        ns.produce_and_consume("127.0.0.1:9092", "systemd-check", 3)
        assert json.loads(node.log_text().splitlines()[0])["level"] == "INFO"


def test_grafana_dashboard_names_only_served_metrics(tmp_path):
    dashboard = json.loads((DEPLOY / "grafana" / "strata-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    used = set()
    for e in exprs:
        used |= {m for m in re.findall(r"\b((?:strata|process)_[a-z_]+)\b", e)}
    with Namespace({}) as ns:
        node = ns.start(
            [STRATA, "serve", "--data-dir", str(tmp_path / "d"), "--metrics-listen", "127.0.0.1:9644"],
            tmp_path / "node.log",
        )
        ns.wait_ready("127.0.0.1:9644", node)
        ns.produce_and_consume("127.0.0.1:9092", "dashboard-check", 1)
        page = ns.http_get("127.0.0.1:9644", "/metrics")
    served = set(re.findall(r"^# TYPE (\S+) ", page, re.M))
    # A summary's samples are served under the family name.
    missing = sorted(m for m in used if m not in served)
    assert not missing, f"dashboard queries metrics the node does not serve: {missing}"


# ------------------------------------------------------------------ topologies


def test_dockerfile_command_serves_a_single_node(tmp_path):
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY target/release/strata /usr/local/bin/strata$", text, re.M)
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.*)$", text, re.M).group(1))
    assert entrypoint == ["/usr/local/bin/strata"]
    args = cmd[:]
    args[args.index("--data-dir") + 1] = str(tmp_path / "data")
    with Namespace({}) as ns:
        node = ns.start([STRATA, *[a.replace("0.0.0.0", "127.0.0.1") for a in args]], tmp_path / "node.log")
        ns.wait_ready("127.0.0.1:9644", node)
        ns.produce_and_consume("127.0.0.1:9092", "docker-check", 1)


def test_compose_topology_runs_and_survives_a_node_kill(tmp_path):
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    nodes = {name: svc for name, svc in compose["services"].items() if svc.get("command", [""])[0] == "serve"}
    assert sorted(nodes) == ["strata-1", "strata-2", "strata-3"]
    hosts = {name: f"127.0.0.{11 + i}" for i, name in enumerate(sorted(nodes))}
    healthcheck = compose["x-strata"]["healthcheck"]["test"]
    assert healthcheck[:3] == ["CMD", "bash", "-c"]
    with Namespace(hosts) as ns:
        procs = {}

        def start(name):
            args = list(nodes[name]["command"])
            args[args.index("--data-dir") + 1] = str(tmp_path / name)
            args = [a.replace("0.0.0.0", hosts[name]) for a in args]
            procs[name] = ns.start([STRATA, *args], tmp_path / f"{name}.log")

        for name in nodes:
            start(name)
        for name in nodes:
            ns.wait_ready(f"{hosts[name]}:9644", procs[name])
            # The compose healthcheck itself, pointed at this node's address.
            check = ns.run(["bash", "-c", healthcheck[3].replace("127.0.0.1", hosts[name])])
            assert check.returncode == 0, check.stderr
        tools = compose["services"]["tools"]["entrypoint"]
        assert tools[1] == "-b"
        info = ns.run([STRATA, "-b", tools[2], "cluster", "info", "--wait", "30", "--expect-brokers", "3"], timeout=40)
        assert info.returncode == 0, info.stderr
        for name in nodes:
            assert f"{name}:9092" in info.stdout, info.stdout
        created = ns.run([STRATA, "-b", tools[2], "topic", "create", "compose-check", "-p", "3", "-r", "3"])
        assert created.returncode == 0, created.stderr
        ns.produce_and_consume(tools[2], "compose-check", 3)
        # A node killed outright: the other two keep serving, and it rejoins.
        procs["strata-1"].kill()
        ns.produce_and_consume("strata-2:9092,strata-3:9092", "compose-check", 3, expected_total=200)
        start("strata-1")
        ns.wait_ready(f"{hosts['strata-1']}:9644", procs["strata-1"])
        info = ns.run([STRATA, "-b", "strata-1:9092", "cluster", "info", "--wait", "30", "--expect-brokers", "3"], timeout=40)
        assert info.returncode == 0, info.stderr


def test_kubernetes_statefulset_topology_runs(tmp_path):
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "strata.yaml").read_text()))
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    headless = next(d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None")
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["publishNotReadyAddresses"] is True
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    script = container["args"][0]
    replicas = sts["spec"]["replicas"]
    domain = f"{headless['metadata']['name']}.default.svc.cluster.local"
    pods = [f"{sts['metadata']['name']}-{i}" for i in range(replicas)]
    hosts = {f"{pod}.{domain}": f"127.0.0.{21 + i}" for i, pod in enumerate(pods)}
    with Namespace(hosts) as ns:
        procs = []
        for i, pod in enumerate(pods):
            pod_script = (
                script.replace("/usr/local/bin/strata", STRATA)
                .replace("/var/lib/strata", str(tmp_path / pod))
                .replace("0.0.0.0", hosts[f"{pod}.{domain}"])
            )
            env = {**os.environ, "HOSTNAME": pod, "POD_NAMESPACE": "default"}
            procs.append(ns.start(["bash", "-c", pod_script], tmp_path / f"{pod}.log", env=env))
        for i, pod in enumerate(pods):
            ns.wait_ready(f"{hosts[f'{pod}.{domain}']}:{ports['metrics']}", procs[i])
        bootstrap = ",".join(f"{h}:{ports['kafka']}" for h in hosts)
        info = ns.run([STRATA, "-b", bootstrap, "cluster", "info", "--wait", "30", "--expect-brokers", str(replicas)], timeout=40)
        assert info.returncode == 0, info.stderr
        # Node ids follow the ordinals: pod strata-N is node N+1 and advertises its stable name.
        for i, pod in enumerate(pods):
            assert re.search(rf"^{i + 1}\s+{re.escape(pod)}\.{re.escape(domain)}:9092", info.stdout, re.M), info.stdout
        quorum = ns.run([STRATA, "-b", bootstrap, "cluster", "quorum"])
        assert quorum.returncode == 0 and quorum.stdout.count("voter") == replicas, quorum.stdout
        created = ns.run([STRATA, "-b", bootstrap, "topic", "create", "k8s-check", "-p", "3", "-r", "3"])
        assert created.returncode == 0, created.stderr
        ns.produce_and_consume(bootstrap, "k8s-check", 3)


# ------------------------------------------------------------------ the namespace


class Node:
    def __init__(self, proc, log):
        self.proc, self.log = proc, log

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_text(self):
        return self.log.read_text(errors="replace")


class Namespace:
    """A network namespace with its own /etc/hosts; everything in it is killed on exit."""

    def __init__(self, hosts):
        self.name = f"stratadeploy{os.getpid()}x{id(self) % 10000}"
        self.hosts = hosts
        self.nodes = []

    def __enter__(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            pytest.skip("needs root and iproute2 to create a network namespace")
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True, timeout=10)
        etc = Path("/etc/netns") / self.name
        etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in self.hosts.items()]
        (etc / "hosts").write_text("\n".join(lines) + "\n")
        return self

    def __exit__(self, *exc):
        for node in self.nodes:
            node.kill()
        subprocess.run(["ip", "netns", "delete", self.name], timeout=10)
        shutil.rmtree(Path("/etc/netns") / self.name, ignore_errors=True)
        if exc[0] is not None:
            for node in self.nodes:
                print(f"--- {node.log} ---\n{node.log_text()[-4000:]}")

    def _wrap(self, cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def start(self, cmd, log, env=None):
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "wb")
        proc = subprocess.Popen(self._wrap(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node = Node(proc, log)
        self.nodes.append(node)
        return node

    def run(self, cmd, timeout=30, input=None):
        return subprocess.run(self._wrap(cmd), capture_output=True, text=True, timeout=timeout, input=input)

    def http_get(self, address, path):
        host, port = address.rsplit(":", 1)
        script = (
            f"exec 3<>/dev/tcp/{host}/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        )
        return self.run(["bash", "-c", script]).stdout

    def wait_ready(self, metrics_address, node, limit=30.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert node.proc.poll() is None, f"node exited:\n{node.log_text()[-3000:]}"
            if " 200 " in self.http_get(metrics_address, "/ready").split("\r\n", 1)[0]:
                return
            time.sleep(0.25)
        raise AssertionError(f"{metrics_address}/ready not 200 within {limit}s:\n{node.log_text()[-3000:]}")

    def produce_and_consume(self, bootstrap, topic, partitions, count=100, expected_total=None):
        """Produces `count` keyed records with acks=all through kcat and reads the topic back."""
        records = "".join(f"k{i}:{topic}-{time.monotonic_ns()}-{i}\n" for i in range(count))
        produced = self.run(
            ["kcat", "-b", bootstrap, "-t", topic, "-P", "-K:", "-X", "acks=all", "-X", "message.timeout.ms=20000"],
            input=records,
            timeout=40,
        )
        assert produced.returncode == 0, produced.stderr
        consumed = self.run(["kcat", "-b", bootstrap, "-t", topic, "-C", "-e", "-q", "-f", "%p %s\n"], timeout=40)
        assert consumed.returncode == 0, consumed.stderr
        lines = consumed.stdout.splitlines()
        values = {line.split(" ", 1)[1] for line in lines}
        for line in records.splitlines():
            assert line.split(":", 1)[1] in values
        assert len(lines) == (expected_total or count)
        assert len({line.split(" ")[0] for line in lines}) == partitions or count < partitions

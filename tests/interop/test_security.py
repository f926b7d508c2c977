"""Security matrix: every client library the project promises, over one Strata node's TLS and
SASL listeners with the StandardAuthorizer on.

The node has PLAINTEXT (set-up only: its principal, User:ANONYMOUS, is the super user), SSL
with `ssl.client.auth=required` and SASL_SSL with PLAIN and SCRAM-SHA-256/512. Users:
alice (PLAIN, SCRAM) and the certificate `CN=secmatrix-app` may read and write topics and
groups starting with `secm-`; eve (PLAIN, SCRAM) may write them but not read them; mallory
has no credentials at all.

For each client (confluent-kafka, kafka-python, aiokafka, kafkajs, kcat on librdkafka 2.0.2,
sarama, Java) one test per case:
  scram512 / plain / mtls   produce then consume a few records as alice or the certificate
  denied                    eve produces, and her consume is refused for the topic
  badpass                   alice with a wrong password fails authentication (SCRAM-SHA-512:
                            the broker refuses the client's proof)
  unknown                   mallory fails authentication (SCRAM-SHA-512: the broker refuses
                            the client's first message, before any challenge)
The client programs are in clients/secure/; each takes a JSON config and prints one JSON line.

Beside the matrix: SCRAM from librdkafka 2.0.2 (Debian's kcat), whose client-final message
repeats the client nonce, and from confluent-kafka's newer librdkafka; and the README's
SASL_SSL example run as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, _free_port, start_strata
import matrix

SECURE = Path(__file__).resolve().parent / "clients" / "secure"
SARAMA_SECURE_BIN = Path(os.environ.get("SARAMA_SECURE_CLIENT", REPO / "target" / "interop" / "sarama-secure"))
COUNT = 5
CLIENT_TIMEOUT_S = 40.0
APP_CN = "secmatrix-app"
PASSWORDS = {"alice": "alice-secret", "eve": "eve-secret"}
# A user with neither a PLAIN password nor SCRAM credentials.
UNKNOWN_USER = "mallory"

CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kafkajs", "kcat", "sarama", "java"]
CASES = ["scram512", "plain", "mtls", "denied", "badpass", "unknown"]

# What each client says when a topic is refused, and when authentication fails.
DENIED = re.compile(r"TOPIC_AUTHORIZATION_FAILED|TopicAuthorizationFailed|TopicAuthorizationException|"
                    r"not authorized to access (this topic|topics)|Topic authorization failed", re.I)
AUTH_FAILED = re.compile(r"AUTHENTICATION|SaslAuthenticationException|SASL_AUTHENTICATION_FAILED|"
                         r"Authentication failed|invalid (username or password|credentials)", re.I)


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def make_certificates(d: Path) -> None:
    """A CA, a broker certificate for 127.0.0.1/localhost, and client certificates, all with
    unencrypted PKCS#8 keys (what every client reads)."""
    def openssl(*args: str) -> None:
        r = _run(["openssl", *args], cwd=d)
        assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}"

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Secmatrix CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name, subject, ext in [
        ("broker", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        ("app", f"/CN={APP_CN}", "extendedKeyUsage=clientAuth\n"),
    ]:
        openssl("req", *ec, "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (d / f"{name}.ext").write_text(ext)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")
        (d / f"{name}.pem").write_text((d / f"{name}.key").read_text() + (d / f"{name}.crt").read_text())


class SecureNode:
    def __init__(self, tmp: Path):
        self.dir = tmp / "certs"
        self.dir.mkdir(parents=True)
        make_certificates(self.dir)
        self.ssl_port, self.sasl_ssl_port = _free_port(), _free_port()
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                + " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items()) + ";")
        self.broker = start_strata(tmp / "node", {
            # The first listener's address is replaced by start_strata's --listen.
            "listeners": f"PLAINTEXT://127.0.0.1:{_free_port()},SSL://127.0.0.1:{self.ssl_port},"
                         f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.dir / "broker.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.dir / "ca.pem"),
            "listener.name.ssl.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
            # Consumer groups form at once (Kafka's default waits 3 s for more members).
            "group.initial.rebalance.delay.ms": 0,
        })
        from confluent_kafka.admin import AdminClient
        self.admin = AdminClient({"bootstrap.servers": self.broker.bootstrap, "log_level": 2,
                                  "log.connection.close": False})

    def path(self, name: str) -> str:
        return str(self.dir / name)

    @property
    def ssl(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_ssl(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    def setup_security(self) -> None:
        """SCRAM credentials with AlterUserScramCredentials and the ACLs, both through the
        PLAINTEXT listener as the super user."""
        from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, ResourcePatternType,
                                           ResourceType, ScramCredentialInfo, ScramMechanism,
                                           UserScramCredentialUpsertion)
        upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mech, 8192), password.encode())
                   for user, password in PASSWORDS.items()
                   for mech in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
        for f in self.admin.alter_user_scram_credentials(upserts, request_timeout=15).values():
            f.result(timeout=20)
        acls = []
        grants = {"User:alice": ["READ", "WRITE", "DESCRIBE"], f"User:CN={APP_CN}": ["READ", "WRITE", "DESCRIBE"],
                  "User:eve": ["WRITE", "DESCRIBE"]}
        for principal, ops in grants.items():
            for op in ops:
                acls.append(AclBinding(ResourceType.TOPIC, "secm-", ResourcePatternType.PREFIXED, principal, "*",
                                       AclOperation[op], AclPermissionType.ALLOW))
            acls.append(AclBinding(ResourceType.GROUP, "secm-", ResourcePatternType.PREFIXED, principal, "*",
                                   AclOperation.READ, AclPermissionType.ALLOW))
        for f in self.admin.create_acls(acls, request_timeout=15).values():
            f.result(timeout=20)

    def create_topic(self, name: str) -> None:
        from confluent_kafka.admin import NewTopic
        self.admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                                 request_timeout=15)[name].result(timeout=20)
        deadline = time.monotonic() + 15
        while True:
            t = self.admin.list_topics(topic=name, timeout=5).topics.get(name)
            if t is not None and t.error is None and t.partitions and all(p.leader >= 0 for p in t.partitions.values()):
                return
            assert time.monotonic() < deadline, f"topic {name} has no leader after 15s"
            time.sleep(0.2)

    def count_records(self, topic: str, expect: int, timeout: float = 15) -> int:
        """Records in `topic`, read as the super user over PLAINTEXT until `expect` or timeout."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": f"secm-check-{topic}",
                      "enable.auto.commit": False, "log_level": 2})
        c.assign([TopicPartition(topic, 0, 0)])
        n, deadline = 0, time.monotonic() + timeout
        while n < expect and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                n += 1
        c.close()
        return n


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not on PATH")
    n = SecureNode(tmp_path_factory.mktemp("secmatrix"))
    try:
        n.setup_security()
        yield n
    finally:
        n.broker.stop()


def _sarama_binary() -> Path:
    """The sarama security client, built from clients/secure/sarama when missing or older than
    its source (GOPATH mode against Debian's sarama sources, as tests/install-deps.sh does)."""
    src = SECURE / "sarama" / "main.go"
    if SARAMA_SECURE_BIN.is_file() and SARAMA_SECURE_BIN.stat().st_mtime >= src.stat().st_mtime:
        return SARAMA_SECURE_BIN
    if not shutil.which("go") or not Path("/usr/share/gocode/src/github.com/Shopify/sarama").is_dir():
        pytest.skip("go or Debian's golang-github-shopify-sarama-dev missing (tests/install-deps.sh)")
    SARAMA_SECURE_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOPROXY": "off",
           "GOFLAGS": "", "GOTOOLCHAIN": "local"}
    r = _run(["go", "build", "-o", str(SARAMA_SECURE_BIN), "."], cwd=SECURE / "sarama", timeout=240, env=env)
    assert r.returncode == 0, f"go build sarama-secure failed:\n{r.stderr.decode(errors='replace')[-3000:]}"
    return SARAMA_SECURE_BIN


def run_client(client: str, cfg: dict) -> tuple[int, dict, str]:
    """Runs one client program; returns its exit code, its JSON line and its stderr."""
    blob = json.dumps(cfg)
    if client in ("confluent-kafka", "kafka-python", "aiokafka"):
        argv = [sys.executable, str(SECURE / "python_secure.py"), client, blob]
    elif client == "kcat":
        if not shutil.which("kcat"):
            pytest.skip("kcat not installed (tests/install-deps.sh)")
        argv = [sys.executable, str(SECURE / "kcat_secure.py"), blob]
    elif client == "kafkajs":
        if not (SECURE.parent.parent / "js" / "node_modules" / "kafkajs").is_dir():
            pytest.skip("kafkajs not installed (tests/install-deps.sh)")
        argv = [shutil.which("node") or "node", str(SECURE / "kafkajs_secure.js"), blob]
    elif client == "sarama":
        argv = [str(_sarama_binary()), blob]
    else:
        if not matrix.JAVA_CLIENT_JAR.is_file():
            pytest.skip(f"{matrix.JAVA_CLIENT_JAR} not built (tests/install-deps.sh)")
        java = matrix.java_argv(matrix.JAVA_CLIENT_JAR)[:-2]  # without -jar JAR
        # The Java client reads key and certificate from one PEM file, the keystore.
        kv = {k: v for k, v in cfg.items() if v is not None and k not in ("cert", "key")}
        argv = [*java, "-cp", str(matrix.JAVA_CLIENT_JAR), str(SECURE / "JavaSecure.java"),
                *(f"{k}={v}" for k, v in kv.items())]
    r = _run(argv, timeout=cfg["timeout"] + 20)
    lines = [ln for ln in r.stdout.decode(errors="replace").splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    return r.returncode, out, r.stderr.decode(errors="replace")[-3000:]


def client_config(node: SecureNode, case: str, topic: str) -> dict:
    cfg = {"ca": node.path("ca.pem"), "topic": topic, "group": f"{topic}-g", "count": COUNT,
           "prefix": topic, "timeout": CLIENT_TIMEOUT_S, "cert": None, "key": None}
    if case == "mtls":
        return {**cfg, "bootstrap": node.ssl, "protocol": "SSL", "cert": node.path("app.crt"),
                "key": node.path("app.key"), "keystore": node.path("app.pem")}
    user = {"denied": "eve", "unknown": UNKNOWN_USER}.get(case, "alice")
    password = "not-" + PASSWORDS.get(user, "a-secret") if case in ("badpass", "unknown") else PASSWORDS[user]
    mechanism = "PLAIN" if case == "plain" else "SCRAM-SHA-512"
    if case in ("badpass", "unknown"):
        cfg["timeout"] = 20.0
    return {**cfg, "bootstrap": node.sasl_ssl, "protocol": "SASL_SSL", "mechanism": mechanism,
            "username": user, "password": password}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("client", CLIENTS)
def test_security_matrix(node, client, case):
    node.broker.check_alive()
    topic = f"secm-{client}-{case}"
    node.create_topic(topic)
    cfg = client_config(node, case, topic)
    rc, out, err = run_client(client, cfg)
    node.broker.check_alive()
    context = f"{client} {case}: exit {rc}, output {out}\nstderr tail:\n{err}\nbroker log tail:\n{node.broker.log_tail(2000)}"
    if case in ("scram512", "plain", "mtls"):
        assert rc == 0 and out.get("consumed") == COUNT, context
        assert node.count_records(topic, COUNT) == COUNT, context
    elif case == "denied":
        # eve may write: her records are there; reading them is refused for the topic.
        assert rc == 1 and out.get("stage") == "consume", context
        assert DENIED.search(out.get("error", "")), context
        assert node.count_records(topic, COUNT) == COUNT, context
    else:
        assert rc == 1 and out.get("stage") in ("connect", "produce"), context
        assert AUTH_FAILED.search(out.get("error", "")), context
        assert node.count_records(topic, 1, timeout=2) == 0, context


def _kcat_librdkafka() -> str:
    r = _run(["kcat", "-V"], timeout=10)
    m = re.search(r"librdkafka ([0-9.]+)", r.stdout.decode(errors="replace"))
    return m.group(1) if m else "unknown"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("library", ["kcat-librdkafka-2.0.2", "confluent-kafka"])
def test_librdkafka_scram(node, library, mechanism):
    """librdkafka before 2.6.1 (Debian 12's kcat: 2.0.2) sends `r=<client nonce><server nonce>`
    in its client-final message; Strata accepts that form beside RFC 5802's, so both the old
    and the current librdkafka produce over SASL_SSL with SCRAM."""
    topic = f"secm-rdkafka-{library}-{mechanism}".lower()
    node.create_topic(topic)
    password = PASSWORDS["alice"]
    if library.startswith("kcat"):
        if not shutil.which("kcat"):
            pytest.skip("kcat not installed")
        version = _kcat_librdkafka()
        if version != "2.0.2":
            pytest.skip(f"kcat links librdkafka {version}, this id is about 2.0.2")
        base = ["kcat", "-b", node.sasl_ssl, "-X", "security.protocol=SASL_SSL", "-X", f"sasl.mechanisms={mechanism}",
                "-X", "sasl.username=alice", "-X", f"ssl.ca.location={node.path('ca.pem')}",
                "-X", "message.timeout.ms=15000"]
        data = "".join(f"{topic}-{i}\n" for i in range(COUNT)).encode()
        r = subprocess.run([*base, "-X", f"sasl.password={password}", "-P", "-t", topic], input=data,
                           capture_output=True, timeout=40)
        assert r.returncode == 0, f"kcat: exit {r.returncode}\n{r.stderr.decode(errors='replace')}"
        # The same client with a wrong password is refused: the broker did check the proof.
        bad = subprocess.run([*base, "-X", "sasl.password=wrong", "-m", "5", "-L"], capture_output=True,
                             timeout=40, stdin=subprocess.DEVNULL)
        assert bad.returncode != 0 and b"uthentication" in bad.stderr, bad.stderr.decode(errors="replace")
    else:
        from confluent_kafka import Producer, libversion
        failures: list[str] = []
        p = Producer({"bootstrap.servers": node.sasl_ssl, "security.protocol": "SASL_SSL",
                      "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": password,
                      "ssl.ca.location": node.path("ca.pem"), "message.timeout.ms": 15000})
        for i in range(COUNT):
            p.produce(topic, value=f"{topic}-{i}",
                      on_delivery=lambda err, _m: err and failures.append(str(err)))
        assert p.flush(30) == 0 and not failures, f"librdkafka {libversion()[0]}: {failures}"
    assert node.count_records(topic, COUNT) == COUNT


def _readme_blocks() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    security = text[text.index("\n## Security\n"):]
    security = security[:security.index("\n## ", 1)]
    return re.findall(r"```(\w*)\n(.*?)```", security, re.S)


@pytest.mark.timeout(90)
def test_readme_sasl_ssl_example(tmp_path):
    """README's 'A working setup with a self-signed CA': its openssl commands, its
    server.properties and its kcat command, run as written. Only the ports (9092, 9094 and the
    controller's default 9093) become free ones and /etc/strata/ becomes the test directory."""
    if not shutil.which("openssl") or not shutil.which("kcat"):
        pytest.skip("openssl or kcat not on PATH")
    blocks = _readme_blocks()
    certs = next(b for lang, b in blocks if lang == "sh" and "openssl req -x509" in b)
    props = next(b for lang, b in blocks if lang == "properties" and "SASL_SSL://" in b and "listeners=" in b)
    cmds = next(b for lang, b in blocks if lang == "sh" and "strata serve --config server.properties" in b)
    plain, sasl = _free_port(), _free_port()
    ports = {"9092": str(plain), "9094": str(sasl)}

    def localise(s: str) -> str:
        s = re.sub(r"127\.0\.0\.1:(9092|9094)\b", lambda m: f"127.0.0.1:{ports[m.group(1)]}", s)
        return s.replace("/etc/strata/", f"{tmp_path}/")

    r = _run(["bash", "-euo", "pipefail", "-c", certs], cwd=tmp_path, timeout=30)
    assert r.returncode == 0, f"README's certificate commands failed:\n{certs}\n{r.stderr.decode(errors='replace')}"
    (tmp_path / "server.properties").write_text(localise(props))
    serve_line, kcat_cmd = None, []
    for line in cmds.replace("\\\n", " ").splitlines():
        if line.startswith("strata serve"):
            serve_line = line
        elif line.startswith("kcat"):
            kcat_cmd.append(line)
    assert serve_line and len(kcat_cmd) == 1, f"README's commands changed shape:\n{cmds}"
    binary = os.environ.get("STRATA_BIN", str(REPO / "target" / "release" / "strata"))
    argv = [binary, *serve_line.split()[1:], "--voters", f"1@127.0.0.1:{_free_port()}"]
    log = open(tmp_path / "strata.log", "wb")
    proc = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", sasl), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    f"strata did not start:\n{(tmp_path / 'strata.log').read_text(errors='replace')[-3000:]}"
                time.sleep(0.1)
        kcat = localise(kcat_cmd[0])
        r = _run(["bash", "-c", kcat], cwd=tmp_path, timeout=30)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and f"127.0.0.1:{sasl}" in out and "1 brokers" in out, \
            f"{kcat}\nexit {r.returncode}\n{out}\n{r.stderr.decode(errors='replace')}"
        # Not vacuous: the same command with another password is refused.
        bad = kcat.replace("sasl.password=alice-secret", "sasl.password=wrong")
        assert bad != kcat
        r = _run(["bash", "-c", bad + " -m 5"], cwd=tmp_path, timeout=30)
        assert r.returncode != 0 and b"uthentication" in r.stderr, r.stderr.decode(errors="replace")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

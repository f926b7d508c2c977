"""SASL OAUTHBEARER with confluent-kafka: librdkafka's oauth_cb hands over a JWT the test signs
with an RSA (RS256) or EC (ES256) key whose public half is in the JWKS file the broker reads
(`sasl.oauthbearer.jwks.endpoint.url=file:...`, Kafka's OAuthBearerValidatorCallbackHandler).
A valid token produces and consumes as User:<sub>; a token for the wrong audience, an expired
one and one signed by a key the JWKS does not hold are refused with Kafka's
`{"status":"invalid_token"}`. With connections.max.reauth.ms=3000 librdkafka re-authenticates
on its connection (KIP-368) and keeps producing well past the session length."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from conftest import _free_port, create_topic, start_strata

jwt = pytest.importorskip("jwt", reason="PyJWT is installed by tests/install-deps.sh")
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

AUDIENCE = "strata"
ISSUER = "https://idp.strata.test"
REAUTH_MS = 3000

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
# Not in the JWKS, though it claims the RSA key's id.
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = {"RS256": (RSA_KEY, "rsa-1"), "ES256": (EC_KEY, "ec-1")}


def public_jwk(key, kid: str, alg: str) -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


def token(sub: str = "alice", alg: str = "RS256", key=None, kid: str | None = None, **claims) -> str:
    signing_key, default_kid = KEYS[alg]
    now = int(time.time())
    payload = {"sub": sub, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 3600}
    payload.update(claims)
    return jwt.encode(payload, key or signing_key, algorithm=alg, headers={"kid": kid or default_kid})


class OAuthBroker:
    def __init__(self, broker, sasl_port: int, metrics_port: int):
        self.broker = broker
        self.sasl = f"127.0.0.1:{sasl_port}"
        self.metrics_port = metrics_port

    def metric(self, name: str) -> int:
        page = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        match = re.search(rf"^{name} (\d+)", page, re.MULTILINE)
        assert match, f"{name} not on the metrics page"
        return int(match.group(1))


@pytest.fixture(scope="module")
def oauth(tmp_path_factory):
    if os.environ.get("INTEROP_BROKER", "strata") != "strata":
        pytest.skip("OAUTHBEARER validation is a broker property")
    tmp = tmp_path_factory.mktemp("oauthbearer")
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(RSA_KEY, "rsa-1", "RS256"),
                                         public_jwk(EC_KEY, "ec-1", "ES256")]}))
    sasl_port, metrics_port = _free_port(), _free_port()
    prefix = "listener.name.sasl_plaintext.oauthbearer."
    broker = start_strata(tmp, {
        # --listen binds the first listener; the SASL one is the clients'.
        "listeners": f"PLAINTEXT://127.0.0.1:{_free_port()},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "OAUTHBEARER",
        prefix + "sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
        prefix + "sasl.server.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
        "connections.max.reauth.ms": REAUTH_MS,
        # Only alice (and the PLAINTEXT admin) may touch topics: the token's sub is the principal.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:alice;User:ANONYMOUS",
        "metrics.listen": f"127.0.0.1:{metrics_port}",
    })
    try:
        yield OAuthBroker(broker, sasl_port, metrics_port)
    finally:
        broker.stop()


def client_config(oauth: OAuthBroker, jwt_token: str, **extra) -> dict:
    config = {
        "bootstrap.servers": oauth.sasl,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        # librdkafka's own idea of the token's life: it refreshes at 80% of it.
        "oauth_cb": lambda _config: (jwt_token, time.time() + 3600),
        "log_level": 3,
    }
    config.update(extra)
    return config


def new_topic(oauth: OAuthBroker) -> str:
    name = f"oauth-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": oauth.broker.bootstrap})
    create_topic(oauth.broker, admin, name, partitions=1)
    return name


def produce(producer: Producer, topic: str, values: list[bytes]) -> list:
    """Produces `values` one by one and returns each delivery's error (None when delivered)."""
    outcomes = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: outcomes.append(err))
        producer.flush(15)
    assert len(outcomes) == len(values), "a delivery report is missing"
    return outcomes


@pytest.mark.timeout(90)
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_signed_token_produces_and_consumes(oauth, alg):
    topic = new_topic(oauth)
    good = token(alg=alg)
    values = [f"{alg}-{i}".encode() for i in range(10)]
    assert produce(Producer(client_config(oauth, good)), topic, values) == [None] * 10

    consumer = Consumer(client_config(oauth, good, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None:
            assert msg.error() is None, msg.error()
            got.append(msg.value())
    consumer.close()
    assert got == values


@pytest.mark.timeout(60)
def test_the_principal_is_the_token_subject(oauth):
    # A valid token for mallory authenticates, but mallory is no super user and has no ACL.
    topic = new_topic(oauth)
    outcomes = produce(Producer(client_config(oauth, token(sub="mallory"), **{"message.timeout.ms": 10000})),
                       topic, [b"x"])
    assert outcomes[0] is not None and outcomes[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, outcomes


REFUSED = {
    "wrong audience": (lambda: token(aud="another-service"), "audience not accepted"),
    "expired": (lambda: token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), "the token expired"),
    "unknown key": (lambda: token(key=STRANGER_KEY), "the signature does not verify"),
    "unknown key id": (lambda: token(key=STRANGER_KEY, kid="rsa-2"), "no key of the JWKS matches"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_token_is_refused(oauth, case):
    make, reason = REFUSED[case]
    errors = []
    producer = Producer(client_config(oauth, make(), error_cb=errors.append))
    deadline = time.monotonic() + 20
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.2)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, f"no authentication error, only {errors}"
    assert "invalid_token" in auth[0].str(), auth[0].str()
    # The broker refused it for this case's reason.
    assert reason in oauth.broker.log_tail(200_000), f"broker log lacks {reason!r}"


@pytest.mark.timeout(90)
def test_producing_past_the_session_length_re_authenticates_on_the_same_connection(oauth):
    topic = new_topic(oauth)
    producer = Producer(client_config(oauth, token(), **{"linger.ms": 0}))
    assert produce(producer, topic, [b"first"]) == [None]
    reauthenticated = oauth.metric("strata_socket_server_successful_reauthentication_total")
    killed = oauth.metric("strata_socket_server_expired_connections_killed_count")
    created = oauth.metric("strata_socket_server_connection_creation_total")

    # Three session lengths of producing, one record every 100 ms, each acknowledged.
    outcomes = []
    end = time.monotonic() + 3 * REAUTH_MS / 1000
    while time.monotonic() < end:
        outcomes += produce(producer, topic, [b"r%d" % len(outcomes)])
        time.sleep(0.1)
    assert outcomes and all(e is None for e in outcomes), [e for e in outcomes if e is not None][:3]

    renewed = oauth.metric("strata_socket_server_successful_reauthentication_total") - reauthenticated
    assert renewed >= 2, f"{renewed} re-authentications in {3 * REAUTH_MS} ms"
    assert oauth.metric("strata_socket_server_expired_connections_killed_count") == killed
    assert oauth.metric("strata_socket_server_connection_creation_total") == created, \
        "the producer had to reconnect instead of re-authenticating"
    print(f"{len(outcomes)} records acknowledged, {renewed} re-authentications")

//! Named listeners, TLS and SASL: one node with PLAINTEXT, SSL (client certificates
//! required), SASL_SSL and SASL_PLAINTEXT listeners, certificates made by the openssl CLI
//! for the test, and librdkafka producing and consuming over each.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, DescribeUserScramCredentialsRequest,
    MetadataRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::certs::Issued;
use strata_tests::sasl::plain_login;
use strata_tests::{certs, raw};
use strata_tests::{free_port, run_bounded, Node, NodeOptions};

const LIMIT: Duration = Duration::from_secs(90);
const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";"#;

/// A CA, a broker certificate for 127.0.0.1 (key and chain in `broker.pem`) and a client
/// certificate with the subject `CN=app,O=Strata Tests`.
fn certificates(dir: &Path) {
    let issued = [
        Issued {
            name: "broker",
            subject: "/CN=localhost",
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        },
        Issued {
            name: "client",
            subject: "/O=Strata Tests/CN=app",
            extensions: "extendedKeyUsage=clientAuth\n",
        },
    ];
    certs::authority(dir, "ca", "/CN=Strata Test CA", &issued);
}

struct Secured {
    node: Node,
    dir: tempfile::TempDir,
    plaintext: String,
    ssl: String,
    sasl_ssl: String,
    sasl_plaintext: String,
}

impl Secured {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn start() -> Secured {
    let dir = tempfile::tempdir().expect("temp dir");
    certificates(dir.path());
    let path = |n: &str| -> PathBuf { dir.path().join(n) };
    let port = free_port();
    let (ssl, sasl_ssl, sasl_plaintext) = (free_port(), free_port(), free_port());
    let listeners = format!(
        "PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl_ssl},\
         SASL_PLAINTEXT://127.0.0.1:{sasl_plaintext}"
    );
    let options = NodeOptions {
        port: Some(port),
        ..NodeOptions::default()
    }
    .property("listeners", &listeners)
    .property("ssl.keystore.type", "PEM")
    .property(
        "ssl.keystore.location",
        &path("broker.pem").display().to_string(),
    )
    .property("ssl.truststore.type", "PEM")
    .property(
        "ssl.truststore.location",
        &path("ca.pem").display().to_string(),
    )
    .property("listener.name.ssl.ssl.client.auth", "required")
    .property(
        "sasl.enabled.mechanisms",
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    )
    .property("listener.name.sasl_ssl.plain.sasl.jaas.config", JAAS)
    .property("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS);
    let node = Node::start(options);
    Secured {
        node,
        dir,
        plaintext: format!("127.0.0.1:{port}"),
        ssl: format!("127.0.0.1:{ssl}"),
        sasl_ssl: format!("127.0.0.1:{sasl_ssl}"),
        sasl_plaintext: format!("127.0.0.1:{sasl_plaintext}"),
    }
}

/// Stores a SCRAM-SHA-512 credential for `user` with AlterUserScramCredentials on `addr`.
fn add_scram_user(addr: &str, user: &str, password: &str) {
    let salt = b"strata-test-salt";
    let mut salted = [0u8; 64];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        std::num::NonZeroU32::new(4096).unwrap(),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_owned()))
            .with_mechanism(2)
            .with_iterations(4096)
            .with_salt(bytes::Bytes::from_static(salt))
            .with_salted_password(bytes::Bytes::copy_from_slice(&salted)),
    ]);
    let mut stream = raw::connect(addr);
    let (_, response) = raw::call(&mut stream, &request, 0);
    assert_eq!(response.results.len(), 1);
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
}

fn client_config(bootstrap: &str, extra: &[(&str, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .set("socket.timeout.ms", "10000");
    for (k, v) in extra {
        config.set(*k, v);
    }
    config
}

/// Produces three records to `topic` and reads them back, both over `bootstrap` with
/// `extra` client settings.
async fn round_trip(bootstrap: &str, extra: &[(&str, String)], topic: &str) {
    let producer: FutureProducer = client_config(bootstrap, extra).create().expect("producer");
    for i in 0..3 {
        let value = format!("{topic}-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(&value)
                    .partition(0),
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic} over {bootstrap}: {e}"));
    }
    let consumer: BaseConsumer = client_config(bootstrap, extra)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consumer error");
            got.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
    }
    let expected: Vec<String> = (0..3).map(|i| format!("{topic}-{i}")).collect();
    assert_eq!(got, expected, "read back over {bootstrap}");
}

/// Whether a librdkafka client with `extra` settings gets metadata from `bootstrap` within
/// a few seconds.
fn metadata_reachable(bootstrap: &str, extra: &[(&str, String)]) -> bool {
    let producer: BaseProducer = client_config(bootstrap, extra).create().expect("producer");
    producer
        .client()
        .fetch_metadata(None, Duration::from_secs(4))
        .is_ok()
}

#[test]
fn sasl_ssl_with_scram_and_plain_and_mutual_tls_produce_and_consume() {
    let secured = start();
    add_scram_user(&secured.plaintext, "bob", "bob-secret");
    let ca = secured.path("ca.pem");
    let scram = [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
        ("sasl.username", "bob".to_owned()),
        ("sasl.password", "bob-secret".to_owned()),
        ("ssl.ca.location", ca.clone()),
    ];
    let plain = [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "PLAIN".to_owned()),
        ("sasl.username", "alice".to_owned()),
        ("sasl.password", "alice-secret".to_owned()),
        ("ssl.ca.location", ca.clone()),
    ];
    let mtls = [
        ("security.protocol", "SSL".to_owned()),
        ("ssl.ca.location", ca.clone()),
        ("ssl.certificate.location", secured.path("client.crt")),
        ("ssl.key.location", secured.path("client.key")),
    ];
    run_bounded(LIMIT, async {
        round_trip(&secured.sasl_ssl, &scram, "over-scram").await;
        round_trip(&secured.sasl_ssl, &plain, "over-plain").await;
        round_trip(&secured.ssl, &mtls, "over-mtls").await;
        round_trip(&secured.plaintext, &[], "over-plaintext").await;
    });
}

#[test]
fn wrong_passwords_unknown_users_and_missing_certificates_are_refused() {
    let secured = start();
    add_scram_user(&secured.plaintext, "bob", "bob-secret");
    let ca = secured.path("ca.pem");
    let sasl = |mechanism: &str, user: &str, password: &str| {
        vec![
            ("security.protocol", "SASL_SSL".to_owned()),
            ("sasl.mechanism", mechanism.to_owned()),
            ("sasl.username", user.to_owned()),
            ("sasl.password", password.to_owned()),
            ("ssl.ca.location", ca.clone()),
        ]
    };
    assert!(metadata_reachable(
        &secured.sasl_ssl,
        &sasl("SCRAM-SHA-512", "bob", "bob-secret")
    ));
    for (mechanism, user, password) in [
        ("SCRAM-SHA-512", "bob", "wrong"),
        ("SCRAM-SHA-512", "nobody", "bob-secret"),
        ("SCRAM-SHA-256", "bob", "bob-secret"),
        ("PLAIN", "alice", "wrong"),
        ("PLAIN", "nobody", "alice-secret"),
    ] {
        assert!(
            !metadata_reachable(&secured.sasl_ssl, &sasl(mechanism, user, password)),
            "{mechanism} {user}/{password} got in"
        );
    }
    // Client certificates are required on the SSL listener.
    let no_certificate = [
        ("security.protocol", "SSL".to_owned()),
        ("ssl.ca.location", ca.clone()),
    ];
    assert!(!metadata_reachable(&secured.ssl, &no_certificate));
}

/// Sends `request` and returns the raw response frame, or `None` if the server closed.
fn try_call<R: kafka_protocol::protocol::Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
) -> Option<bytes::Bytes> {
    stream
        .write_all(&raw::request_frame(request, version, 9))
        .ok()?;
    raw::read_frame(stream).ok()
}

#[test]
fn sasl_listeners_accept_only_the_handshake_before_authentication() {
    let secured = start();
    // ApiVersions is answered, anything else closes the connection.
    let mut stream = raw::connect(&secured.sasl_plaintext);
    let (_, versions) = raw::call(&mut stream, &ApiVersionsRequest::default(), 3);
    assert_eq!(versions.error_code, 0);
    assert!(versions.api_keys.iter().any(|k| k.api_key == 17));
    assert!(versions.api_keys.iter().any(|k| k.api_key == 36));
    assert!(try_call(&mut stream, &MetadataRequest::default(), 12).is_none());

    // A wrong PLAIN password: SASL_AUTHENTICATION_FAILED with Kafka's message, then closed.
    let mut stream = raw::connect(&secured.sasl_plaintext);
    let failed = plain_login(&mut stream, "alice", "wrong");
    assert_eq!(failed.error_code, 58);
    assert_eq!(
        failed.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(raw::closed_by_server(&mut stream));

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM and the enabled ones.
    let mut stream = raw::connect(&secured.sasl_plaintext);
    let (_, handshake) = raw::call(
        &mut stream,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
        1,
    );
    assert_eq!(handshake.error_code, 33);
    assert_eq!(handshake.mechanisms.len(), 3);

    // The right password, then Metadata answers with this listener's endpoint.
    let mut stream = raw::connect(&secured.sasl_plaintext);
    let ok = plain_login(&mut stream, "alice", "alice-secret");
    assert_eq!(ok.error_code, 0, "{ok:?}");
    let (_, metadata) = raw::call(&mut stream, &MetadataRequest::default(), 12);
    let port: i32 = secured
        .sasl_plaintext
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].port, port);
    // A second handshake after authentication: ILLEGAL_SASL_STATE.
    let (_, again) = raw::call(
        &mut stream,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        1,
    );
    assert_eq!(again.error_code, 34);

    // The PLAINTEXT listener answers with its own endpoint.
    let mut stream = raw::connect(&secured.plaintext);
    let (_, metadata) = raw::call(&mut stream, &MetadataRequest::default(), 12);
    let port: i32 = secured
        .plaintext
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(metadata.brokers[0].port, port);

    // A plain-text client on the TLS port gets no Kafka answer: the connection is closed.
    let mut stream = raw::connect(&secured.ssl);
    assert!(try_call(&mut stream, &ApiVersionsRequest::default(), 3).is_none());
    let mut stream = raw::connect(&secured.sasl_ssl);
    assert!(try_call(&mut stream, &ApiVersionsRequest::default(), 3).is_none());
}

#[test]
fn scram_credentials_are_described_without_secrets_and_survive_a_restart() {
    let mut secured = start();
    add_scram_user(&secured.plaintext, "carol", "carol-secret");
    let describe = |addr: &str| {
        let mut stream = raw::connect(addr);
        let (_, response) = raw::call(
            &mut stream,
            &DescribeUserScramCredentialsRequest::default(),
            0,
        );
        response
    };
    let described = describe(&secured.plaintext);
    assert_eq!(described.results.len(), 1);
    assert_eq!(described.results[0].user.as_str(), "carol");
    assert_eq!(described.results[0].credential_infos[0].mechanism, 2);
    assert_eq!(described.results[0].credential_infos[0].iterations, 4096);
    secured.node.stop();
    secured.node.restart();
    let ca = secured.path("ca.pem");
    let scram = [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
        ("sasl.username", "carol".to_owned()),
        ("sasl.password", "carol-secret".to_owned()),
        ("ssl.ca.location", ca),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !metadata_reachable(&secured.sasl_ssl, &scram) {
        assert!(
            Instant::now() < deadline,
            "carol was not let in after the restart"
        );
    }
}

/// One AlterUserScramCredentials request may set both mechanisms for a user (Kafka's admin
/// clients send it so): both are stored, described and let the user in.
#[test]
fn one_request_sets_both_scram_mechanisms_of_a_user() {
    let secured = start();
    let upsertion = |mechanism: i8, algorithm, len: usize| {
        let salt = b"strata-test-salt";
        let mut salted = vec![0u8; len];
        ring::pbkdf2::derive(
            algorithm,
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            b"dave-secret",
            &mut salted,
        );
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("dave"))
            .with_mechanism(mechanism)
            .with_iterations(4096)
            .with_salt(bytes::Bytes::from_static(salt))
            .with_salted_password(bytes::Bytes::from(salted))
    };
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        upsertion(1, ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
        upsertion(2, ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
    ]);
    let mut stream = raw::connect(&secured.plaintext);
    let (_, response) = raw::call(&mut stream, &request, 0);
    assert_eq!(response.results.len(), 1, "{response:?}");
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
    let (_, described) = raw::call(
        &mut stream,
        &DescribeUserScramCredentialsRequest::default(),
        0,
    );
    let mut mechanisms: Vec<i8> = described.results[0]
        .credential_infos
        .iter()
        .map(|c| c.mechanism)
        .collect();
    mechanisms.sort();
    assert_eq!(mechanisms, [1, 2], "{described:?}");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let scram = [
            ("security.protocol", "SASL_SSL".to_owned()),
            ("sasl.mechanism", mechanism.to_owned()),
            ("sasl.username", "dave".to_owned()),
            ("sasl.password", "dave-secret".to_owned()),
            ("ssl.ca.location", secured.path("ca.pem")),
        ];
        assert!(
            metadata_reachable(&secured.sasl_ssl, &scram),
            "dave was not let in with {mechanism}"
        );
    }
}

/// A consumer over TLS reads a log of 30 MB in fetch responses of up to 10 MiB, four times
/// over, each within a bound far above what loopback needs: large responses arrive whole.
#[test]
fn consumers_over_tls_read_large_logs_whole() {
    const RECORDS: usize = 30_000;
    let secured = start();
    let mtls = [
        ("security.protocol", "SSL".to_owned()),
        ("ssl.ca.location", secured.path("ca.pem")),
        ("ssl.certificate.location", secured.path("client.crt")),
        ("ssl.key.location", secured.path("client.key")),
    ];
    run_bounded(LIMIT, async {
        let producer: FutureProducer = client_config(&secured.plaintext, &[])
            .set("linger.ms", "20")
            .create()
            .expect("producer");
        let payload = vec![b'x'; 1024];
        // Queued at once (librdkafka batches them), then awaited.
        let deliveries: Vec<_> = (0..RECORDS)
            .map(|_| {
                producer
                    .send_result(
                        FutureRecord::<(), _>::to("large-over-tls")
                            .payload(&payload)
                            .partition(0),
                    )
                    .unwrap_or_else(|(e, _)| panic!("queueing: {e}"))
            })
            .collect();
        for delivery in deliveries {
            delivery
                .await
                .expect("delivery")
                .unwrap_or_else(|(e, _)| panic!("producing: {e}"));
        }
    });
    for round in 0..4 {
        let consumer: BaseConsumer = client_config(&secured.ssl, &mtls)
            .set("group.id", "large-reader")
            .set("enable.auto.commit", "false")
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "10485760")
            .set("fetch.wait.max.ms", "100")
            .set("queued.max.messages.kbytes", "1048576")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("large-over-tls", 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let started = Instant::now();
        let mut got = 0;
        while got < RECORDS && started.elapsed() < Duration::from_secs(15) {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                message.expect("consumer error");
                got += 1;
            }
        }
        assert_eq!(
            got,
            RECORDS,
            "round {round}: records read over TLS in {:?}",
            started.elapsed()
        );
    }
}

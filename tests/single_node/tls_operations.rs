//! Operating TLS listeners: `ssl.principal.mapping.rules` deciding the principal ACLs see,
//! certificates replaced on disk while the node runs, and the `strata` tools over secured
//! listeners with `--command-config`. Certificates are made by the openssl CLI.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateAclsRequest, CreateTopicsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use strata_tests::{certs, raw};
use strata_tests::{free_port, run_bounded, tool, Node, NodeOptions};

const LIMIT: Duration = Duration::from_secs(90);
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const SERVER_EXTENSIONS: &str =
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXTENSIONS: &str = "extendedKeyUsage=clientAuth\n";

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Options for a node with a PLAINTEXT listener (its bootstrap) and an SSL listener serving
/// the PEM keystore at `keystore`; and the SSL listener's address.
fn with_ssl_listener(keystore: &str) -> (NodeOptions, String) {
    let (options, ssl) = NodeOptions::with_second_listener("SSL");
    let options = options
        .property("ssl.keystore.type", "PEM")
        .property("ssl.keystore.location", keystore);
    (options, ssl)
}

/// Writes `broken.pem` in `dir`: the first half of `first.pem`, a keystore that does not
/// load.
fn write_broken_keystore(dir: &Path) {
    let whole = std::fs::read_to_string(dir.join("first.pem")).expect("first.pem");
    std::fs::write(dir.join("broken.pem"), &whole[..whole.len() / 2]).expect("broken");
}

/// Creates `topic` with one partition over `stream`.
fn create_topic(stream: &mut TcpStream, topic: &str) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(str(topic)))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let (_, response) = raw::call(stream, &request, 7);
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// Allows `principal` every operation on topic `topic`.
fn allow_all(stream: &mut TcpStream, principal: &str, topic: &str) {
    const TOPIC: i8 = 2;
    const LITERAL: i8 = 3;
    const ALL: i8 = 2;
    const ALLOW: i8 = 3;
    let creation = AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(str(topic))
        .with_resource_pattern_type(LITERAL)
        .with_principal(str(principal))
        .with_host(str("*"))
        .with_operation(ALL)
        .with_permission_type(ALLOW);
    let request = CreateAclsRequest::default().with_creations(vec![creation]);
    let (_, response) = raw::call(stream, &request, 3);
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
}

/// Produces one record to `topic` over the mutual-TLS listener `addr` with the client
/// certificate `<name>.crt`; the error librdkafka reports, if any.
async fn produce_with_certificate(
    dir: &Path,
    addr: &str,
    name: &str,
    topic: &str,
) -> Option<RDKafkaErrorCode> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", path(dir, "ca.pem"))
        .set(
            "ssl.certificate.location",
            path(dir, &format!("{name}.crt")),
        )
        .set("ssl.key.location", path(dir, &format!("{name}.key")))
        .set("message.timeout.ms", "10000")
        .set("socket.timeout.ms", "10000")
        .create()
        .expect("producer");
    crate::common::produce_one(&producer, topic, name).await
}

/// The SSL listener's rules map `CN=<name>,OU=Apps,...` to the lower-cased name and leave
/// other subjects whole (DEFAULT): an ACL for `User:alice` lets the certificate of
/// `CN=Alice,OU=Apps` write and not `CN=Bob,OU=Apps`'s; an ACL naming a whole subject
/// matches a certificate no RULE applies to.
#[test]
fn mapped_certificate_subjects_are_the_principals_acls_match() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    certs::make_ca(d, "ca", "/CN=Strata Test CA");
    certs::issue(d, "ca", "broker", "/CN=localhost", SERVER_EXTENSIONS);
    for (name, subject) in [
        ("alice", "/O=Strata Tests/OU=Apps/CN=Alice"),
        ("bob", "/O=Strata Tests/OU=Apps/CN=Bob"),
        ("carol", "/O=Strata Tests/CN=carol"),
    ] {
        certs::issue(d, "ca", name, subject, CLIENT_EXTENSIONS);
    }
    let (options, ssl) = with_ssl_listener(&path(d, "broker.pem"));
    let node = Node::start(
        options
            .property("ssl.truststore.type", "PEM")
            .property("ssl.truststore.location", &path(d, "ca.pem"))
            .property("ssl.client.auth", "required")
            .property(
                "listener.name.ssl.ssl.principal.mapping.rules",
                "RULE:^CN=([^,]+),OU=Apps,.*$/$1/L, DEFAULT",
            )
            .property("authorizer.class.name", STANDARD_AUTHORIZER)
            .property("super.users", "User:ANONYMOUS"),
    );
    let mut admin = raw::connect(&node.bootstrap());
    create_topic(&mut admin, "mapped");
    allow_all(&mut admin, "User:alice", "mapped");
    allow_all(&mut admin, "User:CN=carol,O=Strata Tests", "mapped");
    run_bounded(LIMIT, async {
        assert_eq!(
            produce_with_certificate(d, &ssl, "alice", "mapped").await,
            None
        );
        assert_eq!(
            produce_with_certificate(d, &ssl, "carol", "mapped").await,
            None
        );
        assert_eq!(
            produce_with_certificate(d, &ssl, "bob", "mapped").await,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        );
    });
}

/// A TLS handshake with `addr` trusting `ca.pem`: the stream, and the certificate the
/// server presented (DER).
fn tls_connect(
    dir: &Path,
    addr: &str,
) -> (
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    Vec<u8>,
) {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots(dir))
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name.to_owned()).expect("TLS client");
    let tcp = raw::connect(addr);
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    let served = stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate")
        .as_ref()
        .to_vec();
    (stream, served)
}

/// The test CA of `dir` as a rustls root store.
fn roots(dir: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca.pem") {
        roots
            .add(cert.expect("CA certificate"))
            .expect("adding the CA");
    }
    roots
}

/// The DER of the certificate in `<name>.crt`.
fn certificate(dir: &Path, name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(dir.join(format!("{name}.crt")))
        .expect("certificate")
        .as_ref()
        .to_vec()
}

/// ApiVersions over an open TLS stream: whether it is answered.
fn api_versions_answered(stream: &mut impl ReadWrite) -> bool {
    let frame = raw::request_frame(&ApiVersionsRequest::default(), 3, 7);
    if stream.write_all(&frame).is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    stream.read_exact(&mut body).is_ok() && body.len() >= 4
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Waits until `check` holds, at most `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The keystore file of a running SSL listener is replaced: new connections get the new
/// certificate while one opened before keeps working; a broken file is refused with an
/// error in the log and the last good certificate keeps serving.
#[test]
fn a_replaced_keystore_serves_new_connections_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    certs::make_ca(d, "ca", "/CN=Strata Test CA");
    certs::issue(d, "ca", "first", "/O=First/CN=localhost", SERVER_EXTENSIONS);
    // The same subject: a new subject is refused by default (`ssl.allow.dn.changes`).
    certs::issue(
        d,
        "ca",
        "second",
        "/O=First/CN=localhost",
        SERVER_EXTENSIONS,
    );
    let keystore = d.join("keystore.pem");
    std::fs::copy(d.join("first.pem"), &keystore).expect("keystore");
    let (options, ssl) = with_ssl_listener(&keystore.display().to_string());
    let node = Node::start(options.property("ssl.truststore.location", &path(d, "ca.pem")));
    let (mut before, served) = tls_connect(d, &ssl);
    assert_eq!(served, certificate(d, "first"));
    assert!(api_versions_answered(&mut before));

    // Written to a temporary file and renamed, as deployment tools replace certificates.
    let replace = |from: &str| {
        let temporary = d.join("keystore.pem.new");
        std::fs::copy(d.join(from), &temporary).expect("copy");
        std::fs::rename(&temporary, &keystore).expect("rename");
    };
    replace("second.pem");
    eventually(
        Duration::from_secs(20),
        "the second certificate served",
        || tls_connect(d, &ssl).1 == certificate(d, "second"),
    );
    assert!(
        api_versions_answered(&mut before),
        "a connection opened before the change keeps working"
    );

    // Half a keystore: refused, logged, and the second certificate keeps serving.
    write_broken_keystore(d);
    replace("broken.pem");
    eventually(
        Duration::from_secs(20),
        "the broken keystore logged",
        || node.log().contains("do not load"),
    );
    let (mut after, served) = tls_connect(d, &ssl);
    assert_eq!(served, certificate(d, "second"));
    assert!(api_versions_answered(&mut after));
}

/// Runs `strata -b <brokers> <args>` (at most 30 s): success, stdout, stderr.
fn strata(brokers: &str, args: &[&str]) -> (bool, String, String) {
    let output = tool::run(&[&["-b", brokers], args].concat());
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Like [`strata`], failing the test unless it succeeds: its stdout.
fn strata_ok(brokers: &str, args: &[&str]) -> String {
    tool::ok(&[&["-b", brokers], args].concat())
}

/// A node whose only listener is SASL_SSL (PLAIN user admin, a super user, and SCRAM user
/// bob): `strata topic` and `strata acl` work with a `--command-config` file naming the
/// truststore and the credentials, PLAIN and SCRAM-SHA-512 alike, and fail with a hint to
/// it without one, or with an authentication error with a wrong password.
#[test]
fn strata_tools_reach_a_sasl_ssl_listener_with_command_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    certs::make_ca(d, "ca", "/CN=Strata Test CA");
    certs::issue(d, "ca", "broker", "/CN=localhost", SERVER_EXTENSIONS);
    let port = free_port();
    // Quotes escaped: the harness writes properties into a TOML file.
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";"#;
    let node = Node::start(
        NodeOptions {
            port: Some(port),
            ..NodeOptions::default()
        }
        .property("listeners", &format!("SASL_SSL://127.0.0.1:{port}"))
        .property("ssl.keystore.type", "PEM")
        .property("ssl.keystore.location", &path(d, "broker.pem"))
        .property("ssl.truststore.location", &path(d, "ca.pem"))
        .property("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512")
        .property("sasl.mechanism.inter.broker.protocol", "PLAIN")
        .property("listener.name.sasl_ssl.plain.sasl.jaas.config", jaas)
        .property("authorizer.class.name", STANDARD_AUTHORIZER)
        .property("super.users", "User:admin;User:bob"),
    );
    let brokers = node.bootstrap();
    let properties = |name: &str, mechanism: &str, module: &str, user: &str, password: &str| {
        let file = d.join(name);
        std::fs::write(
            &file,
            format!(
                "security.protocol=SASL_SSL\n\
                 ssl.truststore.type=PEM\n\
                 ssl.truststore.location={}\n\
                 sasl.mechanism={mechanism}\n\
                 sasl.jaas.config=org.apache.kafka.common.security.{module} required \
                 username=\"{user}\" password=\"{password}\";\n",
                path(d, "ca.pem")
            ),
        )
        .expect("writing the client properties");
        file.display().to_string()
    };
    let admin = properties(
        "admin.properties",
        "PLAIN",
        "plain.PlainLoginModule",
        "admin",
        "admin-secret",
    );
    // A SCRAM credential for bob, set by admin with `strata user` over SASL_SSL.
    let set = strata_ok(
        &brokers,
        &[
            "--command-config",
            &admin,
            "user",
            "add",
            "bob",
            "--password",
            "bob-secret",
            "--iterations",
            "4096",
        ],
    );
    assert!(set.contains("set SCRAM-SHA-512 for bob"), "{set}");
    let users = strata_ok(&brokers, &["--command-config", &admin, "user", "list"]);
    assert!(
        users
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["bob", "SCRAM-SHA-512", "4096"]),
        "{users}"
    );
    let bob = properties(
        "bob.properties",
        "SCRAM-SHA-512",
        "scram.ScramLoginModule",
        "bob",
        "bob-secret",
    );
    let (ok, _, stderr) = strata(&brokers, &["topic", "list"]);
    assert!(!ok, "plain text reached the SASL_SSL listener");
    assert!(stderr.contains("--command-config"), "{stderr}");

    let created = strata_ok(
        &brokers,
        &[
            "--command-config",
            &admin,
            "topic",
            "create",
            "secured",
            "-p",
            "2",
        ],
    );
    assert!(created.contains("secured"), "{created}");
    let listed = strata_ok(&brokers, &["topic", "list", "--command-config", &admin]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some("secured")),
        "{listed}"
    );
    let added = strata_ok(
        &brokers,
        &[
            "--command-config",
            &admin,
            "acl",
            "add",
            "--allow-principal",
            "User:carol",
            "--operation",
            "Read",
            "--topic",
            "secured",
        ],
    );
    assert!(added.contains("added 1 ACLs"), "{added}");
    let acls = strata_ok(&brokers, &["--command-config", &admin, "acl", "list"]);
    assert!(acls.contains("User:carol"), "{acls}");
    let listed = strata_ok(&brokers, &["--command-config", &bob, "topic", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some("secured")),
        "{listed}"
    );

    // Without the credential bob is refused.
    let removed = strata_ok(
        &brokers,
        &["--command-config", &admin, "user", "remove", "bob"],
    );
    assert!(
        removed.contains("removed SCRAM-SHA-512 of bob"),
        "{removed}"
    );
    let (ok, _, _) = strata(&brokers, &["--command-config", &bob, "topic", "list"]);
    assert!(!ok, "bob got in without a credential");

    let wrong = properties(
        "wrong.properties",
        "PLAIN",
        "plain.PlainLoginModule",
        "admin",
        "wrong",
    );
    let (ok, _, stderr) = strata(&brokers, &["--command-config", &wrong, "topic", "list"]);
    assert!(!ok);
    assert!(stderr.contains("Invalid username or password"), "{stderr}");
}

/// Whether librdkafka, trusting only the CA `<ca>.pem`, completes a Metadata request over
/// the SSL listener `addr`: whether the certificate served chains to that CA.
fn rdkafka_trusts(dir: &Path, addr: &str, ca: &str) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", path(dir, &format!("{ca}.pem")))
        .create()
        .expect("consumer");
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .is_ok()
}

/// IncrementalAlterConfigs setting `key` to `value` for broker 1 over `stream`: the error
/// code and message.
fn alter_broker_config(stream: &mut TcpStream, key: &str, value: &str) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    const BROKER: i8 = 4;
    const SET: i8 = 0;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(str("1"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(str(key))
                .with_config_operation(SET)
                .with_value(Some(str(value)))]),
    ]);
    let (_, response) = raw::call(stream, &request, 1);
    let result = &response.responses[0];
    (
        result.error_code,
        result
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// As in Kafka: altering the SSL listener's keystore location for this broker loads the
/// new certificate at once, a keystore that does not load is refused with INVALID_REQUEST
/// and the old certificate keeps serving, and altering it to the same path reads the file
/// again even when nothing else would notice it changed.
#[test]
fn an_altered_keystore_location_is_loaded_at_once_and_a_broken_one_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // Two CAs: which one a client must trust tells which certificate is served.
    certs::make_ca(d, "ca", "/CN=Strata Test CA");
    certs::make_ca(d, "ca2", "/CN=Strata Second CA");
    certs::issue(d, "ca", "first", "/CN=localhost", SERVER_EXTENSIONS);
    certs::issue(d, "ca2", "second", "/CN=localhost", SERVER_EXTENSIONS);
    let (options, ssl) = with_ssl_listener(&path(d, "first.pem"));
    let node = Node::start(options);
    let mut admin = raw::connect(&node.bootstrap());
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    assert!(!rdkafka_trusts(d, &ssl, "ca2"));
    const KEY: &str = "listener.name.ssl.ssl.keystore.location";

    // A new path: served at once (nothing polls second.pem).
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "second.pem"));
    assert_eq!(code, 0, "{message}");
    eventually(Duration::from_secs(10), "the second certificate", || {
        rdkafka_trusts(d, &ssl, "ca2")
    });
    assert!(!rdkafka_trusts(d, &ssl, "ca"));

    // Unprefixed, or as the cluster default: refused as Kafka refuses them.
    let (code, message) = alter_broker_config(&mut admin, "ssl.keystore.location", "/x.pem");
    assert_eq!(code, 42, "{message}");
    assert!(message.contains("listener prefix"), "{message}");

    // Half a keystore: INVALID_REQUEST, and the second certificate keeps serving.
    write_broken_keystore(d);
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "broken.pem"));
    assert_eq!(code, 42, "{message}");
    assert!(
        message.contains("Validation of dynamic config update of SSLFactory failed"),
        "{message}"
    );
    assert!(rdkafka_trusts(d, &ssl, "ca2"));
    assert!(!rdkafka_trusts(d, &ssl, "ca"));

    // The same path with new contents of the same length and modification time, which
    // the file polling cannot tell from the old: the alter alone reads it again.
    let second = d.join("second.pem");
    let old = std::fs::metadata(&second).expect("second.pem");
    let mut first = std::fs::read(d.join("first.pem")).expect("first.pem");
    let mut current = std::fs::read(&second).expect("second.pem");
    let len = first.len().max(current.len());
    first.resize(len, b'\n');
    current.resize(len, b'\n');
    let pinned = |contents: &[u8]| {
        std::fs::write(&second, contents).expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&second)
            .and_then(|f| f.set_modified(old.modified().expect("mtime")))
            .expect("pin mtime");
    };
    pinned(&current);
    // The padded file: same certificate, now at its final length, read by the alter.
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "second.pem"));
    assert_eq!(code, 0, "{message}");
    std::thread::sleep(Duration::from_secs(4));
    pinned(&first);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        rdkafka_trusts(d, &ssl, "ca2"),
        "the polling reloaded a file whose time and length did not change"
    );
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "second.pem"));
    assert_eq!(code, 0, "{message}");
    eventually(Duration::from_secs(10), "the rewritten certificate", || {
        rdkafka_trusts(d, &ssl, "ca")
    });
}

/// Starts a node with an SSL listener serving `keystore` (and, when `allow_dn_changes`,
/// `ssl.allow.dn.changes=true` for it); answers the node and the SSL address.
fn ssl_node(keystore: &Path, allow_dn_changes: bool) -> (Node, String) {
    let (port, ssl) = (free_port(), free_port());
    let mut options = NodeOptions {
        port: Some(port),
        ..NodeOptions::default()
    }
    .property(
        "listeners",
        &format!("PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl}"),
    )
    .property("ssl.keystore.type", "PEM")
    .property("ssl.keystore.location", &keystore.display().to_string());
    if allow_dn_changes {
        options = options.property("listener.name.ssl.ssl.allow.dn.changes", "true");
    }
    (Node::start(options), format!("127.0.0.1:{ssl}"))
}

/// As in Kafka (`ssl.allow.dn.changes`, `ssl.allow.san.changes`, both false by default): a
/// keystore whose certificate has another subject, or lacks one of the subject alternative
/// names, is refused through IncrementalAlterConfigs with INVALID_REQUEST and, when the
/// file is replaced, with a warning while the old certificate keeps serving; with
/// `ssl.allow.dn.changes=true` the new subject is served.
#[test]
fn a_keystore_with_another_subject_is_refused_unless_dn_changes_are_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // The replacements come from a second CA: which CA a client must trust tells which
    // certificate is served.
    certs::make_ca(d, "ca", "/CN=Strata Test CA");
    certs::make_ca(d, "ca2", "/CN=Strata Second CA");
    certs::issue(
        d,
        "ca",
        "first",
        "/O=Strata/CN=localhost",
        SERVER_EXTENSIONS,
    );
    certs::issue(
        d,
        "ca2",
        "renamed",
        "/O=Elsewhere/CN=localhost",
        SERVER_EXTENSIONS,
    );
    certs::issue(
        d,
        "ca2",
        "fewer-names",
        "/O=Strata/CN=localhost",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    let keystore = d.join("keystore.pem");
    std::fs::copy(d.join("first.pem"), &keystore).expect("keystore");
    let (node, ssl) = ssl_node(&keystore, false);
    let mut admin = raw::connect(&node.bootstrap());
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    const KEY: &str = "listener.name.ssl.ssl.keystore.location";

    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "renamed.pem"));
    assert_eq!(code, 42, "{message}");
    assert!(
        message.contains("Validation of dynamic config update of SSLFactory failed")
            && message.contains("Keystore DistinguishedName does not match")
            && message.contains("DN=CN=localhost,O=Elsewhere"),
        "{message}"
    );
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "fewer-names.pem"));
    assert_eq!(code, 42, "{message}");
    assert!(
        message.contains("Keystore SubjectAltNames do not match")
            && message.contains("[2, localhost]"),
        "{message}"
    );
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    assert!(!rdkafka_trusts(d, &ssl, "ca2"));

    // The file replaced: refused with a warning, and the old certificate keeps serving.
    let temporary = d.join("keystore.pem.new");
    std::fs::copy(d.join("renamed.pem"), &temporary).expect("copy");
    std::fs::rename(&temporary, &keystore).expect("rename");
    eventually(Duration::from_secs(20), "the refusal logged", || {
        node.log().contains("the new certificate is refused")
    });
    assert!(
        node.log()
            .contains("Keystore DistinguishedName does not match"),
        "{}",
        node.log()
    );
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    assert!(!rdkafka_trusts(d, &ssl, "ca2"));
    drop(node);

    // With ssl.allow.dn.changes=true the new subject is taken, through the alter and
    // through the file alike.
    std::fs::copy(d.join("first.pem"), &keystore).expect("keystore");
    let (node, ssl) = ssl_node(&keystore, true);
    let mut admin = raw::connect(&node.bootstrap());
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    let (code, message) = alter_broker_config(&mut admin, KEY, &path(d, "renamed.pem"));
    assert_eq!(code, 0, "{message}");
    eventually(
        Duration::from_secs(10),
        "the renamed certificate served",
        || rdkafka_trusts(d, &ssl, "ca2"),
    );
    drop(node);
    std::fs::copy(d.join("first.pem"), &keystore).expect("keystore");
    let (node, ssl) = ssl_node(&keystore, true);
    assert!(rdkafka_trusts(d, &ssl, "ca"));
    std::fs::copy(d.join("renamed.pem"), &temporary).expect("copy");
    std::fs::rename(&temporary, &keystore).expect("rename");
    eventually(Duration::from_secs(20), "the renamed file served", || {
        rdkafka_trusts(d, &ssl, "ca2")
    });
    assert!(!node.log().contains("the new certificate is refused"));
}

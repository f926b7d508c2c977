//! Security between nodes: the controller port (Raft, broker registration, command
//! submission) over mutual TLS, and replication over an SSL inter-broker listener whose
//! clients must present certificates. Certificates are made by the openssl CLI for the test:
//! the cluster's CA with one node certificate, and a second CA with a certificate of its own
//! for the attacker.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Cluster as Client, SaslCredentials, SaslMechanism};
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, BrokerId, CreateTopicsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use strata_tests::certs::Issued;
use strata_tests::cluster::Cluster;
use strata_tests::{certs, free_port, free_port_on, run_bounded, strata_bin, Node, NodeOptions};

const TOPIC: &str = "secured";
const RECORDS: usize = 200;

/// The subject of every node certificate.
const NODE_SUBJECT: &str = "/O=Strata Tests/CN=strata-node";
/// The extensions of every node certificate: it serves and connects on every test host.
const NODE_EXTENSIONS: &str = "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,\
                               IP:127.0.0.4,DNS:localhost\n\
                               extendedKeyUsage=serverAuth,clientAuth\n";

/// The cluster CA (`ca.pem`), a certificate every node uses as server and client
/// (`node.pem`), and a CA the cluster does not trust with a certificate of its own
/// (`rogue.pem`) carrying the same subject and names.
fn certificates(dir: &Path) {
    for (ca, name) in [("ca", "node"), ("rogue-ca", "rogue")] {
        let issued = Issued {
            name,
            subject: NODE_SUBJECT,
            extensions: NODE_EXTENSIONS,
        };
        certs::authority(dir, ca, "/CN=Strata Cluster CA", &[issued]);
    }
}

/// A cluster whose controller port needs mutual TLS and whose inter-broker listener
/// (INTERNAL) is SSL with client certificates required; clients use the PLAINTEXT listener.
struct Secured {
    cluster: Cluster,
    dir: tempfile::TempDir,
    /// The voters' controller addresses.
    controllers: Vec<String>,
    /// Each node's CLIENT listener (SASL_PLAINTEXT with PLAIN), under [`InterBroker::Scram`].
    clients: Vec<String>,
}

/// The inter-broker listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InterBroker {
    /// SSL with client certificates required.
    Ssl,
    /// SASL_SSL, brokers authenticating with PLAIN.
    SaslSsl,
    /// SASL_SSL, brokers authenticating with SCRAM-SHA-512 as `User:broker`, a super user of
    /// the StandardAuthorizer; clients use a SASL_PLAINTEXT listener (CLIENT) with PLAIN
    /// users `admin` (a super user) and `alice` (no ACLs). Node `wrong_password_on`, when
    /// set, has a wrong password in its JAAS line.
    Scram { wrong_password_on: Option<i32> },
}

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// The password of `User:broker`'s SCRAM credential.
const BROKER_PASSWORD: &str = "broker-secret";
/// The CLIENT listener's PLAIN users (escaped for the harness's TOML file).
const CLIENT_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_alice=\"alice-secret\";"#;

/// The JAAS line a node authenticates to other brokers with under SCRAM.
fn scram_jaas(password: &str) -> String {
    format!(
        r#"org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"{password}\";"#
    )
}

/// The JAAS line of the SASL_SSL inter-broker listener: this broker's own credentials and
/// the users it accepts (escaped for the harness's TOML file).
const BROKER_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\";"#;

/// `voters` voting nodes and `brokers_only` broker-only nodes (which reach the voters over
/// mutual TLS too: registration, heartbeats, the metadata stream).
fn start_secured(voters: usize, brokers_only: usize) -> Secured {
    start_with(voters, brokers_only, InterBroker::Ssl)
}

fn start_with(voters: usize, brokers_only: usize, inter_broker: InterBroker) -> Secured {
    let dir = tempfile::tempdir().expect("temp dir");
    certificates(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let mut controllers = Vec::new();
    let mut clients = Vec::new();
    let cluster = Cluster::start_configured(voters, brokers_only, |options| {
        let host = options.host.clone();
        if let Some(controller_port) = options.controller_port {
            controllers.push(format!("{host}:{controller_port}"));
        }
        let (port, internal) = (free_port_on(&host), free_port_on(&host));
        let scram = matches!(inter_broker, InterBroker::Scram { .. });
        let mut listeners = format!("PLAINTEXT://{host}:{port},INTERNAL://{host}:{internal}");
        if scram {
            let client = format!("{host}:{}", free_port_on(&host));
            listeners.push_str(&format!(",CLIENT://{client}"));
            clients.push(client);
        }
        let node_id = options.node_id;
        let mut options = NodeOptions {
            port: Some(port),
            ..options
        }
        .property("listeners", &listeners)
        .property(
            "listener.security.protocol.map",
            match inter_broker {
                InterBroker::Ssl => "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
                InterBroker::SaslSsl => "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CONTROLLER:SSL",
                InterBroker::Scram { .. } => {
                    "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CLIENT:SASL_PLAINTEXT,CONTROLLER:SSL"
                }
            },
        )
        .property("inter.broker.listener.name", "INTERNAL")
        // The INTERNAL listener takes the unprefixed settings...
        .property("ssl.keystore.type", "PEM")
        .property("ssl.keystore.location", &file("node.pem"))
        .property("ssl.truststore.type", "PEM")
        .property("ssl.truststore.location", &file("ca.pem"))
        .property("listener.name.internal.ssl.client.auth", "required")
        // ...and the controller listener its own, as Kafka's KRaft controllers do.
        .property(
            "listener.name.controller.ssl.keystore.location",
            &file("node.pem"),
        )
        .property(
            "listener.name.controller.ssl.truststore.location",
            &file("ca.pem"),
        )
        .property("listener.name.controller.ssl.client.auth", "required");
        match inter_broker {
            InterBroker::Ssl => {}
            InterBroker::SaslSsl => {
                options = options
                    .property("sasl.mechanism.inter.broker.protocol", "PLAIN")
                    .property("listener.name.internal.sasl.enabled.mechanisms", "PLAIN")
                    .property("listener.name.internal.plain.sasl.jaas.config", BROKER_JAAS);
            }
            InterBroker::Scram { wrong_password_on } => {
                let password = if wrong_password_on == Some(node_id) {
                    "not-the-broker-secret"
                } else {
                    BROKER_PASSWORD
                };
                options = options
                    .property("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512")
                    .property(
                        "listener.name.internal.sasl.enabled.mechanisms",
                        "SCRAM-SHA-512",
                    )
                    .property(
                        "listener.name.internal.scram-sha-512.sasl.jaas.config",
                        &scram_jaas(password),
                    )
                    .property("listener.name.client.sasl.enabled.mechanisms", "PLAIN")
                    .property("listener.name.client.plain.sasl.jaas.config", CLIENT_JAAS)
                    .property("authorizer.class.name", STANDARD_AUTHORIZER)
                    .property("super.users", "User:broker;User:admin");
                if wrong_password_on.is_some() {
                    // The refused follower leaves the ISR within seconds.
                    options = options.property("replica.lag.time.max.ms", "5000");
                }
            }
        }
        options
    });
    Secured {
        cluster,
        dir,
        controllers,
        clients,
    }
}

/// Three voters under [`InterBroker::Scram`] (node `wrong_password_on` with a wrong password)
/// and the admin's access to their CLIENT listeners.
fn start_scram(wrong_password_on: Option<i32>) -> (Secured, ClientAccess) {
    let secured = start_with(3, 0, InterBroker::Scram { wrong_password_on });
    let admin = ClientAccess::plain(&secured.clients, "admin", "admin-secret");
    (secured, admin)
}

/// Waits until every node is a broker, then stores `User:broker`'s SCRAM credential: as in
/// Kafka, the brokers' own SCRAM credential is metadata, and until it exists no broker can
/// log in to another.
async fn store_broker_credential(secured: &mut Secured) {
    secured
        .cluster
        .wait_for_brokers(Duration::from_secs(30))
        .await;
    add_broker_credential(&secured.clients[0]).await;
}

/// Fails the test if the log of a node of `ids` tells of a failed inter-broker login.
fn assert_no_inter_broker_refusal(cluster: &mut Cluster, ids: &[i32]) {
    for &id in ids {
        let log = cluster.node(id).log();
        assert!(
            !log.contains("inter-broker authentication failed"),
            "node {id}:\n{log}"
        );
    }
}

#[test]
fn a_cluster_with_mutual_tls_between_nodes_replicates_over_its_ssl_inter_broker_listener() {
    // Three voters and a broker-only node: Raft, forwarded commands, heartbeats and the
    // broker-only node's metadata stream all cross the controller port's TLS.
    let mut secured = start_secured(3, 1);
    run_bounded(Duration::from_secs(120), async move {
        replicates_acks_all_writes(&mut secured.cluster, None).await;
    });
}

/// Replaces `name` in `dir` with `contents` as deployment tools do: written beside it, then
/// renamed over it.
fn replace_file(dir: &Path, name: &str, contents: &[u8]) {
    let temporary = dir.join(format!("{name}.new"));
    std::fs::write(&temporary, contents).expect("write");
    std::fs::rename(&temporary, dir.join(name)).expect("rename");
}

/// Waits until every running node of `cluster` logged that its TLS between nodes (the
/// controller port's and the inter-broker client's: two per file change) was read again
/// at least `times` times.
fn wait_for_node_tls_reloads(cluster: &mut Cluster, ids: &[i32], times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for &id in ids {
        loop {
            let log = cluster.node(id).log();
            let reloads = log.matches("TLS between nodes reloaded").count();
            if reloads >= times {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} reloaded its TLS between nodes {reloads} times, not {times}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A CA roll while the cluster runs, as an operator does it: the truststores first carry
/// the old and the new CA, then every node certificate is replaced by one the new CA signed,
/// then the old CA leaves the truststores, all by rewriting the files the nodes read. Each
/// running node reads its controller port's TLS (both ends) and its inter-broker client's
/// again; a node restarted afterwards, which knows only the new CA, joins the quorum, and
/// acks=all writes that need every node replicate over fresh inter-broker connections.
#[test]
fn controller_port_and_inter_broker_certificates_roll_to_a_new_ca_while_running() {
    let mut secured = start_secured(3, 0);
    let dir = secured.dir.path().to_path_buf();
    run_bounded(Duration::from_secs(240), async move {
        secured
            .cluster
            .wait_for_brokers(Duration::from_secs(30))
            .await;
        let issued = Issued {
            name: "node-next",
            subject: NODE_SUBJECT,
            extensions: NODE_EXTENSIONS,
        };
        certs::authority(&dir, "ca-next", "/CN=Strata Cluster CA Next", &[issued]);
        let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
        let (old_ca, new_ca) = (read("ca.pem"), read("ca-next.pem"));
        let all = [1, 2, 3];

        // Both CAs trusted, then the new certificate, then only the new CA.
        replace_file(&dir, "ca.pem", &[old_ca, new_ca.clone()].concat());
        wait_for_node_tls_reloads(&mut secured.cluster, &all, 2);
        replace_file(&dir, "node.pem", &read("node-next.pem"));
        wait_for_node_tls_reloads(&mut secured.cluster, &all, 4);
        replace_file(&dir, "ca.pem", &new_ca);
        wait_for_node_tls_reloads(&mut secured.cluster, &all, 6);

        // Node 3 starts again knowing only the new CA: every handshake with nodes 1 and 2,
        // on the controller port both ways and on the inter-broker listener, needs their
        // reloaded certificates and truststores.
        secured.cluster.node(3).kill();
        secured.cluster.node(3).restart();
        replicates_acks_all_writes(&mut secured.cluster, None).await;
    });
}

#[test]
fn followers_authenticate_with_plain_on_a_sasl_ssl_inter_broker_listener() {
    let mut secured = start_with(3, 0, InterBroker::SaslSsl);
    run_bounded(Duration::from_secs(120), async move {
        replicates_acks_all_writes(&mut secured.cluster, None).await;
    });
}

#[test]
fn brokers_authenticate_with_scram_between_them_as_a_super_user_under_the_authorizer() {
    let (mut secured, admin) = start_scram(None);
    run_bounded(Duration::from_secs(150), async {
        store_broker_credential(&mut secured).await;
        replicates_acks_all_writes(&mut secured.cluster, Some(&admin)).await;
        // The authorizer is on: a user without ACLs does not see the topic.
        let alice = ClientAccess::plain(&secured.clients, "alice", "alice-secret");
        let mut client = Client::connect_with(&alice.bootstrap, &alice.security)
            .await
            .expect("alice connects");
        let refused = client.metadata(Some(&[TOPIC]), false).await.unwrap_err();
        assert!(
            refused.to_string().contains("TopicAuthorizationFailed"),
            "{refused}"
        );
    });
    assert_no_inter_broker_refusal(&mut secured.cluster, &[1, 2, 3]);
}

#[test]
fn a_broker_with_a_wrong_scram_password_stays_out_of_sync_and_says_why() {
    const TOPIC: &str = "refused";
    let (mut secured, admin) = start_scram(Some(3));
    run_bounded(Duration::from_secs(150), async {
        store_broker_credential(&mut secured).await;
        // Led by node 1, followed by 2 (right password) and 3 (wrong one).
        let mut connection = admin
            .security
            .connect(&secured.clients[0])
            .await
            .expect("admin");
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)])])])
            .with_timeout_ms(30_000);
        let response = connection.send(request, 5).await.expect("CreateTopics");
        assert_eq!(response.topics[0].error_code, 0, "{response:?}");
        let producer: FutureProducer = admin
            .rdkafka()
            .set("acks", "all")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("producer");
        for i in 0..20 {
            producer
                .send(
                    FutureRecord::<(), _>::to(TOPIC).payload(&format!("record-{i}")),
                    Duration::from_secs(60),
                )
                .await
                .map_err(|(e, _)| format!("record {i}: {e}"))
                .expect("acks=all produce once node 3 left the ISR");
        }
        let mut client = Client::connect_with(&admin.bootstrap, &admin.security)
            .await
            .expect("admin connects");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let topics = client
                .metadata(Some(&[TOPIC]), false)
                .await
                .expect("metadata");
            let partition = &topics[0].partitions[0];
            let mut isr = partition.isr.clone();
            isr.sort_unstable();
            if isr == [1, 2] {
                break;
            }
            assert!(Instant::now() < deadline, "ISR stays {partition:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Node 2 holds the records; node 3 fetched none.
    let bytes = |node: &mut Node| -> u64 {
        let dir = node.data_dir().join(format!("{TOPIC}-0"));
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    };
    assert!(
        bytes(secured.cluster.node(2)) > 0,
        "node 2 replicated nothing"
    );
    assert_eq!(bytes(secured.cluster.node(3)), 0, "node 3 fetched records");
    let log = secured.cluster.node(3).log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("inter-broker authentication failed"))
        .collect();
    // Said once for the leader that refuses it, not once a retry.
    assert_eq!(refusals.len(), 1, "{log}");
    assert!(
        refusals[0].contains("ERROR") && refusals[0].contains("SaslAuthenticationFailed"),
        "{}",
        refusals[0]
    );
    assert_no_inter_broker_refusal(&mut secured.cluster, &[1, 2]);
}

/// How a test's clients reach the cluster: the bootstrap servers and, for a SASL listener,
/// the PLAIN user they log in as.
struct ClientAccess {
    bootstrap: String,
    /// rdkafka's settings for the login.
    settings: Vec<(&'static str, String)>,
    security: client::Security,
}

impl ClientAccess {
    /// PLAIN logins as `user` over the SASL_PLAINTEXT listeners at `addresses`.
    fn plain(addresses: &[String], user: &str, password: &str) -> Self {
        let credentials = SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: user.to_owned(),
            password: password.to_owned(),
        };
        Self {
            bootstrap: addresses.join(","),
            settings: vec![
                ("security.protocol", "SASL_PLAINTEXT".to_owned()),
                ("sasl.mechanism", "PLAIN".to_owned()),
                ("sasl.username", user.to_owned()),
                ("sasl.password", password.to_owned()),
            ],
            security: client::Security::new(None, Some(credentials)),
        }
    }

    /// An rdkafka configuration with the bootstrap servers and the login.
    fn rdkafka(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.settings {
            config.set(*key, value);
        }
        config
    }
}

/// Stores `User:broker`'s SCRAM-SHA-512 credential (password [`BROKER_PASSWORD`]) through
/// the CLIENT listener at `address`, logged in as the super user `admin`.
async fn add_broker_credential(address: &str) {
    let admin = ClientAccess::plain(&[address.to_owned()], "admin", "admin-secret");
    let mut connection = admin.security.connect(address).await.expect("admin");
    let salt = b"strata-broker-salt";
    let iterations = std::num::NonZeroU32::new(4096).expect("non-zero");
    let salted = client::scram_salted_password(
        SaslMechanism::ScramSha512,
        BROKER_PASSWORD,
        salt,
        iterations,
    );
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("broker"))
            .with_mechanism(2)
            .with_iterations(4096)
            .with_salt(bytes::Bytes::from_static(salt))
            .with_salted_password(bytes::Bytes::from(salted)),
    ]);
    let response = connection
        .send(request, 0)
        .await
        .expect("AlterUserScramCredentials");
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
}

/// Writes with acks=all to a topic of three replicas and `min.insync.replicas=3`, so every
/// write needs both followers to have fetched it over the inter-broker listener, and reads
/// everything back; through `access`, else over the PLAINTEXT listeners.
async fn replicates_acks_all_writes(cluster: &mut Cluster, access: Option<&ClientAccess>) {
    {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let plaintext = ClientAccess {
            bootstrap: cluster.bootstrap(),
            settings: Vec::new(),
            security: client::Security::default(),
        };
        let access = access.unwrap_or(&plaintext);
        let bootstrap = access.bootstrap.clone();
        let mut client = Client::connect_with(&bootstrap, &access.security)
            .await
            .expect("connect");
        // Every acks=all write needs both followers: they fetch over INTERNAL (TLS).
        let configs = BTreeMap::from([("min.insync.replicas".to_owned(), "3".to_owned())]);
        client
            .create_topic(TOPIC, 3, 3, &configs)
            .await
            .expect("create topic");
        let producer: FutureProducer = access
            .rdkafka()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
        let sends = (0..RECORDS).map(|i| {
            let producer = &producer;
            async move {
                let value = format!("record-{i}");
                let key = i.to_string();
                producer
                    .send(
                        FutureRecord::to(TOPIC).key(&key).payload(&value),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| format!("record {i}: {e}"))
            }
        });
        for outcome in futures::future::join_all(sends).await {
            outcome.expect("acks=all produce");
        }
        let topics = client
            .metadata(Some(&[TOPIC]), false)
            .await
            .expect("metadata");
        for partition in &topics[0].partitions {
            assert_eq!(partition.isr.len(), 3, "{partition:?}");
        }
        let consumer: BaseConsumer = access
            .rdkafka()
            .set("group.id", "secured-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for p in 0..3 {
            assignment
                .add_partition_offset(TOPIC, p, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.len() < RECORDS {
            assert!(
                Instant::now() < deadline,
                "read back {} of {RECORDS} records",
                seen.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("fetch");
                let value =
                    String::from_utf8(message.payload().expect("value").to_vec()).expect("utf-8");
                seen.insert(value);
            }
        }
        let expected: std::collections::BTreeSet<String> =
            (0..RECORDS).map(|i| format!("record-{i}")).collect();
        assert_eq!(seen, expected);
    }
}

/// What a controller port answers an HTTP/2 client (the gRPC transport) that reaches it
/// through `stream`: `Ok` with the first frame header the server sends, or `Err` with why
/// nothing came (the connection was refused).
fn h2_answer(stream: &mut impl ReadWrite) -> Result<[u8; 9], String> {
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame.
    hello.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    stream
        .write_all(&hello)
        .map_err(|e| format!("write: {e}"))?;
    stream.flush().map_err(|e| format!("flush: {e}"))?;
    let mut header = [0u8; 9];
    stream
        .read_exact(&mut header)
        .map_err(|e| format!("read: {e}"))?;
    Ok(header)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A TCP connection to `address` whose reads give up after five seconds.
fn tcp(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("controller port reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}

/// A TLS client that trusts the cluster's CA and presents `keystore` (none when `None`).
fn tls_client(dir: &Path, keystore: Option<&str>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca.pem") {
        roots.add(cert.expect("CA certificate")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = match keystore {
        Some(name) => {
            let pem = dir.join(format!("{name}.pem"));
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pem)
                .expect("keystore")
                .collect::<Result<_, _>>()
                .expect("certificates");
            let key = PrivateKeyDer::from_pem_file(&pem).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// `h2_answer` over TLS with `config` to `address`.
fn tls_answer(address: &str, config: Arc<rustls::ClientConfig>) -> Result<[u8; 9], String> {
    let host = address.rsplit_once(':').expect("host:port").0;
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    let connection = rustls::ClientConnection::new(config, name).expect("TLS client");
    let mut stream = rustls::StreamOwned::new(connection, tcp(address));
    h2_answer(&mut stream)
}

#[test]
fn the_controller_port_refuses_peers_without_a_certificate_from_the_cluster_ca() {
    let mut secured = start_secured(1, 0);
    let dir = secured.dir.path().to_path_buf();
    let controller = secured.controllers[0].clone();
    let registered_at = secured.cluster.node(1).bootstrap();
    // The attack of issue 13: RegisterBroker, Submit, AppendEntries from a client with no
    // credentials. Each reaches the services only through an HTTP/2 connection; none is
    // opened, so no request of any of them is read.
    let plaintext = h2_answer(&mut tcp(&controller));
    assert!(plaintext.is_err(), "plain HTTP/2 answered: {plaintext:?}");
    let anonymous = tls_answer(&controller, tls_client(&dir, None));
    assert!(
        anonymous.is_err(),
        "TLS without a certificate: {anonymous:?}"
    );
    let rogue = tls_answer(&controller, tls_client(&dir, Some("rogue")));
    assert!(rogue.is_err(), "a certificate of another CA: {rogue:?}");
    // A peer with the cluster's certificate gets the server's HTTP/2 SETTINGS frame.
    let member = tls_answer(&controller, tls_client(&dir, Some("node"))).expect("member");
    assert_eq!(member[3], 4, "first frame {member:?} is not SETTINGS");
    let log = secured.cluster.node(1).log();
    assert!(
        log.contains("TLS handshake failed"),
        "refusals not logged:\n{log}"
    );
    // And the metadata still has broker 1 where it registered itself.
    run_bounded(Duration::from_secs(30), async move {
        let mut client = Client::connect(&registered_at).await.expect("connect");
        client.metadata(None, false).await.expect("metadata");
        let brokers: Vec<(i32, String)> = client
            .brokers()
            .iter()
            .map(|(id, address)| (*id, address.clone()))
            .collect();
        assert_eq!(brokers, vec![(1, registered_at.clone())]);
    });
    drop(secured);
}

#[test]
fn a_voter_refuses_a_plaintext_controller_port_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kafka, controller) = (free_port(), free_port());
    let mut child = Command::new(strata_bin())
        .arg("serve")
        .args(["--node-id", "1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{kafka}")])
        .args(["--voters", &format!("1@127.0.0.1:{controller}")])
        .args(["--controller-listen", &format!("0.0.0.0:{controller}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting strata");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on strata") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata still runs with a plaintext controller port on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("reading stderr");
    assert!(!status.success(), "exited with {status}:\n{stderr}");
    assert!(
        stderr.contains("without TLS") && stderr.contains("controller.allow.plaintext"),
        "{stderr}"
    );
    for port in [kafka, controller] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} was served"
        );
    }
}

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

use client::Cluster as Client;
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

/// The cluster CA (`ca.pem`), a certificate every node uses as server and client
/// (`node.pem`), and a CA the cluster does not trust with a certificate of its own
/// (`rogue.pem`) carrying the same subject and names.
fn certificates(dir: &Path) {
    let extensions = "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,\
                      DNS:localhost\n\
                      extendedKeyUsage=serverAuth,clientAuth\n";
    for (ca, name) in [("ca", "node"), ("rogue-ca", "rogue")] {
        let issued = Issued {
            name,
            subject: "/O=Strata Tests/CN=strata-node",
            extensions,
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
}

/// The inter-broker listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InterBroker {
    /// SSL with client certificates required.
    Ssl,
    /// SASL_SSL, brokers authenticating with PLAIN.
    SaslSsl,
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
    let hosts: Vec<String> = (1..=voters + brokers_only)
        .map(|i| format!("127.0.0.{i}"))
        .collect();
    let controller_ports: Vec<u16> = hosts[..voters].iter().map(|h| free_port_on(h)).collect();
    let controllers: Vec<String> = hosts
        .iter()
        .zip(&controller_ports)
        .map(|(h, p)| format!("{h}:{p}"))
        .collect();
    let voter_list: Vec<String> = controllers
        .iter()
        .enumerate()
        .map(|(i, address)| format!("{}@{address}", i + 1))
        .collect();
    let voter_list = voter_list.join(",");
    let nodes = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let (port, internal) = (free_port_on(host), free_port_on(host));
            let mut options = NodeOptions {
                node_id: i as i32 + 1,
                host: host.clone(),
                voters: Some(voter_list.clone()),
                controller_port: controller_ports.get(i).copied(),
                roles: (i >= voters).then(|| "broker".to_owned()),
                port: Some(port),
                ..NodeOptions::default()
            }
            .property(
                "listeners",
                &format!("PLAINTEXT://{host}:{port},INTERNAL://{host}:{internal}"),
            )
            .property(
                "listener.security.protocol.map",
                match inter_broker {
                    InterBroker::Ssl => "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
                    InterBroker::SaslSsl => "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CONTROLLER:SSL",
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
            if inter_broker == InterBroker::SaslSsl {
                options = options
                    .property("sasl.mechanism.inter.broker.protocol", "PLAIN")
                    .property("listener.name.internal.sasl.enabled.mechanisms", "PLAIN")
                    .property("listener.name.internal.plain.sasl.jaas.config", BROKER_JAAS);
            }
            Node::start(options)
        })
        .collect();
    Secured {
        cluster: Cluster { nodes },
        dir,
        controllers,
    }
}

#[test]
fn a_cluster_with_mutual_tls_between_nodes_replicates_over_its_ssl_inter_broker_listener() {
    // Three voters and a broker-only node: Raft, forwarded commands, heartbeats and the
    // broker-only node's metadata stream all cross the controller port's TLS.
    let mut secured = start_secured(3, 1);
    run_bounded(Duration::from_secs(120), async move {
        replicates_acks_all_writes(&mut secured.cluster).await;
    });
}

#[test]
fn followers_authenticate_with_plain_on_a_sasl_ssl_inter_broker_listener() {
    let mut secured = start_with(3, 0, InterBroker::SaslSsl);
    run_bounded(Duration::from_secs(120), async move {
        replicates_acks_all_writes(&mut secured.cluster).await;
    });
}

/// Writes with acks=all to a topic of three replicas and `min.insync.replicas=3`, so every
/// write needs both followers to have fetched it over the inter-broker listener, and reads
/// everything back.
async fn replicates_acks_all_writes(cluster: &mut Cluster) {
    {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        let mut client = Client::connect(&bootstrap).await.expect("connect");
        // Every acks=all write needs both followers: they fetch over INTERNAL (TLS).
        let configs = BTreeMap::from([("min.insync.replicas".to_owned(), "3".to_owned())]);
        client
            .create_topic(TOPIC, 3, 3, &configs)
            .await
            .expect("create topic");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
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
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
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

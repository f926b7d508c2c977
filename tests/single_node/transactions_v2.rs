//! Transaction version 2 (KIP-890 part 2) with Kafka's Java client 4.4.0, which uses it when
//! the broker finalizes `transaction.version` 2: every commit and abort bumps the producer
//! epoch, partitions join through Produce v12 and the group through TxnOffsetCommit v5,
//! read_committed never sees aborted records, a zombie producer is fenced; with the level
//! pinned to 0 the same client falls back to the classic protocol. librdkafka (the classic
//! protocol) keeps working against the same broker.
//!
//! The Java program is `java/TransactionsV2.java`, run as a single-file source program with
//! kafka-clients 4.4.0 and slf4j-api from the local Maven repository (`~/.m2`, or the jars
//! named by `STRATA_KAFKA_CLIENTS_JAR` and `STRATA_SLF4J_API_JAR`); fetch them with
//! `mvn dependency:get -Dartifact=org.apache.kafka:kafka-clients:4.4.0`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;
use strata_tests::{run_bounded, Node};

use crate::common::create_topic;
use crate::transactions::{read, send_all, transactional, values, TIMEOUT};

/// How long one Java scenario may take (JVM start and in-memory compilation included).
const JAVA_LIMIT: Duration = Duration::from_secs(150);

fn jar(env: &str, maven_path: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        PathBuf::from(home).join(".m2/repository").join(maven_path)
    });
    assert!(
        path.exists(),
        "{} is missing: fetch it with mvn dependency:get, or name it in {env}",
        path.display()
    );
    path
}

/// Runs one scenario of `TransactionsV2.java` against `bootstrap`; panics with its output
/// unless it exits 0 saying `ok <scenario>`.
fn java_scenario(bootstrap: &str, scenario: &str) {
    let classpath = [
        jar(
            "STRATA_KAFKA_CLIENTS_JAR",
            "org/apache/kafka/kafka-clients/4.4.0/kafka-clients-4.4.0.jar",
        ),
        jar(
            "STRATA_SLF4J_API_JAR",
            "org/slf4j/slf4j-api/2.0.17/slf4j-api-2.0.17.jar",
        ),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("single_node/java/TransactionsV2.java");
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(source)
        .args([bootstrap, scenario])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting java (Java 17 is needed)");
    let deadline = Instant::now() + JAVA_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for java") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the Java scenario {scenario} exceeded {JAVA_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    assert!(
        status.success() && out.contains(&format!("ok {scenario}")),
        "{scenario}: {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
}

#[test]
fn java_transactions_v2_commit_abort_and_fence_a_zombie() {
    let node = Node::start_default();
    let b = node.bootstrap();
    java_scenario(&b, "commit-abort");
    java_scenario(&b, "zombie");
}

#[test]
fn java_transactions_v2_commit_consumer_offsets_through_txn_offset_commit_v5() {
    let node = Node::start_default();
    java_scenario(&node.bootstrap(), "offsets");
}

/// UpdateFeatures to transaction.version 0 (kafka-features.sh downgrade): the Java client
/// then ends transactions without an epoch bump; librdkafka's classic transactions work at
/// every level.
#[test]
fn with_the_level_pinned_to_0_clients_use_the_classic_protocol_and_librdkafka_works_at_2() {
    let node = Node::start_default();
    let b = node.bootstrap();
    java_scenario(&b, "pinned-lower");
    run_bounded(TIMEOUT, create_topic(&b, "classic", 2, &[]));
    let p = transactional(&b, "classic-app", &[]);
    run_bounded(TIMEOUT, async {
        p.begin_transaction().unwrap();
        send_all(&p, "classic", &values("c", 4)).await;
        p.commit_transaction(TIMEOUT).expect("commit");
        p.begin_transaction().unwrap();
        send_all(&p, "classic", &values("a", 4)).await;
        p.abort_transaction(TIMEOUT).expect("abort");
    });
    assert_eq!(
        read(&b, "classic", 2, "read_committed", 4, TIMEOUT),
        values("c", 4)
    );
}

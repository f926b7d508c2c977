//! Transaction version 2 (KIP-890 part 2) with Kafka's Java client 4.4.0, which uses it when
//! the broker finalizes `transaction.version` 2 (each test first upgrades a new node's 0, as
//! `kafka-features.sh upgrade` does): every commit and abort bumps the producer
//! epoch, partitions join through Produce v12 and the group through TxnOffsetCommit v5,
//! read_committed never sees aborted records, a zombie producer is fenced; with the level
//! pinned to 0 the same client falls back to the classic protocol. librdkafka (the classic
//! protocol) keeps working against the same broker.
//! The Java side is `strata_tests::java::transactions_v2`.

use rdkafka::producer::Producer;
use strata_tests::java::transactions_v2 as java_scenario;
use strata_tests::{run_bounded, Node};

use crate::common::create_topic;
use crate::transactions::{read, send_all, transactional, values, TIMEOUT};

#[test]
fn java_transactions_v2_commit_abort_and_fence_a_zombie() {
    let node = Node::start_default();
    let b = node.bootstrap();
    java_scenario(&b, "upgrade");
    java_scenario(&b, "commit-abort");
    java_scenario(&b, "zombie");
}

#[test]
fn java_transactions_v2_commit_consumer_offsets_through_txn_offset_commit_v5() {
    let node = Node::start_default();
    java_scenario(&node.bootstrap(), "upgrade");
    java_scenario(&node.bootstrap(), "offsets");
}

/// UpdateFeatures to transaction.version 0 (kafka-features.sh downgrade): the Java client
/// then ends transactions without an epoch bump; librdkafka's classic transactions work at
/// every level.
#[test]
fn with_the_level_pinned_to_0_clients_use_the_classic_protocol_and_librdkafka_works_at_2() {
    let node = Node::start_default();
    let b = node.bootstrap();
    java_scenario(&b, "upgrade");
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

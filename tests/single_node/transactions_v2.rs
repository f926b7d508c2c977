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

/// Transaction version 2: the coordinator's abort of a timed-out transaction bumps the
/// producer epoch once, so its marker carries epoch + 1 (not + 2) and the producer's own
/// EndTxn abort at its old epoch is the retry of that end, answered with the bumped epoch.
#[test]
fn a_timed_out_version_2_transaction_is_aborted_at_the_next_epoch() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    use kafka_protocol::messages::{
        DescribeProducersRequest, EndTxnRequest, ProduceRequest, ProducerId, TopicName,
        TransactionalId, UpdateFeaturesRequest,
    };
    use kafka_protocol::protocol::StrBytes;
    use segment_store::testing::BatchBuilder;
    use std::time::{Duration, Instant};

    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "tv2-timeout", 1, &[]));
    let mut stream = strata_tests::raw::connect(&b);
    let upgrade = UpdateFeaturesRequest::default()
        .with_timeout_ms(10_000)
        .with_feature_updates(vec![FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str("transaction.version"))
            .with_max_version_level(2)
            .with_upgrade_type(1)]);
    let (_, upgraded) = strata_tests::raw::call(&mut stream, &upgrade, 1);
    assert_eq!(upgraded.error_code, 0, "{upgraded:?}");
    assert!(
        upgraded.results.iter().all(|r| r.error_code == 0),
        "{upgraded:?}"
    );

    let id = TransactionalId(StrBytes::from_static_str("tv2-timeout-app"));
    let (pid, epoch) =
        strata_tests::raw::init_transactional(&mut stream, "tv2-timeout-app", 1_000, 5);
    let deadline = Instant::now() + TIMEOUT;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batch = BatchBuilder::new(0)
        .timestamp(now)
        .producer(pid, epoch, 0)
        .attributes(0x10)
        .build();
    let produce = ProduceRequest::default()
        .with_transactional_id(Some(id.clone()))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("tv2-timeout")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.into()))])]);
    // Produce v12 adds the partition to the transaction (no AddPartitionsToTxn).
    loop {
        let (_, r) = strata_tests::raw::call(&mut stream, &produce, 12);
        let code = r.responses[0].partition_responses[0].error_code;
        if code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "Produce v12: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The coordinator aborts it past its 1 s timeout; the marker shows its epoch.
    let describe = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_static_str("tv2-timeout")))
        .with_partition_indexes(vec![0])]);
    let marker_epoch = loop {
        let (_, r) = strata_tests::raw::call(&mut stream, &describe, 0);
        let p = r.topics[0].partitions[0]
            .active_producers
            .iter()
            .find(|p| p.producer_id.0 == pid)
            .cloned()
            .expect("the producer is listed");
        if p.current_txn_start_offset == -1 {
            break p.producer_epoch;
        }
        assert!(Instant::now() < deadline, "not aborted: {p:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(marker_epoch, i32::from(epoch) + 1, "one bump");

    let end = EndTxnRequest::default()
        .with_transactional_id(id)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(false);
    let (_, ended) = strata_tests::raw::call(&mut stream, &end, 5);
    assert_eq!(ended.error_code, 0, "{ended:?}");
    assert_eq!(
        (ended.producer_id.0, i32::from(ended.producer_epoch)),
        (pid, marker_epoch),
        "the producer learns the bumped epoch"
    );
}

/// One Produce v12 of `batch` to `topic`-0 in the transaction of `transactional_id` (the
/// partition leader adds the partition to the transaction, KIP-890 part 2), retried while
/// the coordinator is still ending the previous transaction (NOT_ENOUGH_REPLICAS): the
/// partition's error code.
fn produce_v12(
    s: &mut std::net::TcpStream,
    transactional_id: &str,
    topic: &str,
    batch: bytes::Bytes,
) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;
    const NOT_ENOUGH_REPLICAS: i16 = 19;
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.to_owned(),
        ))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (_, response) = strata_tests::raw::call(s, &request, 12);
        let code = response.responses[0].partition_responses[0].error_code;
        if code != NOT_ENOUGH_REPLICAS || std::time::Instant::now() > deadline {
            return code;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The stall of issue #15 (a spring-kafka transactional producer on three nodes retrying
/// OUT_OF_ORDER_SEQUENCE_NUMBER until its transaction timed out): EndTxn v5 bumps the epoch
/// and the markers carry it, so the next transaction's batches start at sequence 0. When the
/// first batch is refused (the coordinator still writing the markers) and a later one of the
/// same epoch gets in first, the leader must refuse the later one as out of order, as Kafka
/// does; taking it left a gap that the first batch could never fill.
#[test]
fn after_an_epoch_bump_a_batch_that_overtakes_sequence_0_is_out_of_order() {
    use client::{encode_transactional_batch, Compression, ProducerIdentity};
    use kafka_protocol::messages::{EndTxnRequest, ProducerId, TransactionalId};
    use kafka_protocol::protocol::StrBytes;
    use strata_tests::raw::{call, connect, init_transactional};

    const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "bumped", 1, &[]));
    let mut s = connect(&b);
    let id = "app-bumped";
    let txn_id = || TransactionalId(StrBytes::from_static_str("app-bumped"));
    let (producer_id, first) = init_transactional(&mut s, id, 60_000, 4);
    let batch = |epoch: i16, seq: i32, count: usize| {
        let identity = ProducerIdentity {
            producer_id,
            producer_epoch: epoch,
            base_sequence: seq,
        };
        let records = crate::common::records(&format!("e{epoch}s{seq}"), count);
        encode_transactional_batch(&records, Compression::None, identity).unwrap()
    };
    let end = |s: &mut std::net::TcpStream, epoch: i16| {
        let request = EndTxnRequest::default()
            .with_transactional_id(txn_id())
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_committed(true);
        let (_, ended) = call(s, &request, 5);
        assert_eq!(ended.error_code, 0, "{ended:?}");
        assert_eq!(ended.producer_id.0, producer_id);
        ended.producer_epoch
    };

    assert_eq!(produce_v12(&mut s, id, "bumped", batch(first, 0, 8)), 0);
    let bumped = end(&mut s, first);
    assert_eq!(bumped, first + 1, "EndTxn v5 bumps the epoch");
    // The second batch of the next transaction before its first: refused until the first
    // is in (retried here while the markers of the commit are still being written).
    assert_eq!(
        produce_v12(&mut s, id, "bumped", batch(bumped, 3, 5)),
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce_v12(&mut s, id, "bumped", batch(bumped, 0, 3)), 0);
    assert_eq!(produce_v12(&mut s, id, "bumped", batch(bumped, 3, 5)), 0);
    end(&mut s, bumped);
    let committed = read(&b, "bumped", 1, "read_committed", 16, TIMEOUT);
    assert_eq!(committed.len(), 16, "{committed:?}");
}

//! Idempotent produce: retries get their original offsets, gaps and stale epochs are refused,
//! and the state behind it survives restarts.

use std::collections::HashSet;
use std::time::Duration;

use client::{encode_batch_as, Compression, ProducerIdentity};
use kafka_protocol::messages::InitProducerIdRequest;
use rdkafka::producer::FutureRecord;
use strata_tests::{run_bounded, Node};

use crate::common::{create_topic, producer, raw_produce, read_all, records};

fn init_producer_id(bootstrap: &str) -> (i64, i16) {
    let mut stream = strata_tests::raw::connect(bootstrap);
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 4);
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

/// An idempotent batch of `count` records stamped now: a partition forgets a producer
/// `producer.id.expiration.ms` after its last batch's timestamp, so old stamps would expire
/// it at once (as in Kafka).
fn batch(id: (i64, i16), seq: i32, count: usize) -> bytes::Bytes {
    let identity = ProducerIdentity {
        producer_id: id.0,
        producer_epoch: id.1,
        base_sequence: seq,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut stamped = records(&format!("s{seq}"), count);
    for r in &mut stamped {
        r.timestamp = now;
    }
    encode_batch_as(&stamped, Compression::None, Some(identity)).unwrap()
}

#[test]
fn resent_batch_gets_its_original_offset_and_gaps_are_refused() {
    let mut node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "idem", 1, &[]),
    );
    let id = init_producer_id(&bootstrap);
    let other = init_producer_id(&bootstrap);
    assert_ne!(id.0, other.0, "every producer gets its own id");
    assert_eq!(raw_produce(&bootstrap, "idem", 0, batch(id, 0, 5)), (0, 0));
    assert_eq!(raw_produce(&bootstrap, "idem", 0, batch(id, 5, 5)), (0, 5));
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch(id, 0, 5)),
        (0, 0),
        "a retry of the first batch"
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch(id, 5, 5)),
        (0, 5),
        "a retry of the second batch"
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch(id, 20, 1)).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch(other, 0, 1)),
        (0, 10),
        "producers are independent"
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch((id.0, id.1 + 1), 0, 2)),
        (0, 11),
        "a new epoch starts over"
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch(id, 10, 1)).0,
        47,
        "INVALID_PRODUCER_EPOCH for the old epoch"
    );

    // Producer state survives a clean restart and a kill -9.
    node.stop();
    node.restart();
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch((id.0, id.1 + 1), 0, 2)),
        (0, 11)
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch((id.0, id.1 + 1), 2, 1)),
        (0, 13)
    );
    node.kill();
    node.restart();
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch((id.0, id.1 + 1), 2, 1)),
        (0, 13)
    );
    assert_eq!(
        raw_produce(&bootstrap, "idem", 0, batch((id.0, id.1 + 1), 3, 1)),
        (0, 14)
    );
    let got = read_all(&bootstrap, "idem", 1, 15, Duration::from_secs(20));
    assert_eq!(got.len(), 15, "no duplicates were appended");
}

#[test]
fn librdkafka_retries_across_a_paused_broker_do_not_duplicate() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "retried", 2, &[]),
    );
    let total = 3000;
    run_bounded(Duration::from_secs(90), async {
        let producer = producer(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("request.timeout.ms", "1000"),
                ("message.timeout.ms", "60000"),
                ("linger.ms", "1"),
                ("batch.num.messages", "50"),
            ],
        );
        let mut sends = Vec::new();
        for i in 0..total {
            let fut = producer
                .send_result(
                    FutureRecord::to("retried")
                        .key(&format!("k{}", i % 10))
                        .payload(&format!("v{i}")),
                )
                .expect("queue");
            sends.push(fut);
            if i == total / 3 {
                node.pause();
                tokio::time::sleep(Duration::from_millis(2500)).await;
                node.resume();
            }
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for send in sends {
            send.await.expect("delivery").expect("acknowledged");
        }
    });
    let got = read_all(&bootstrap, "retried", 2, total + 1, Duration::from_secs(10));
    let values: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    let unique: HashSet<&String> = values.iter().collect();
    assert_eq!(unique.len(), total, "every record is there");
    assert_eq!(values.len(), total, "and none twice");
    for p in 0..2 {
        let seqs: Vec<usize> = got
            .iter()
            .filter(|g| g.partition == p)
            .map(|g| {
                String::from_utf8(g.value.clone().unwrap()).unwrap()[1..]
                    .parse()
                    .unwrap()
            })
            .collect();
        let mut by_key: std::collections::HashMap<usize, usize> = Default::default();
        for s in seqs {
            let last = by_key.insert(s % 10, s);
            assert!(
                last.is_none_or(|l| l < s),
                "per-key order kept in partition {p}"
            );
        }
    }
}

/// The producer ids DescribeProducers lists for `topic`-0.
fn listed_producers(bootstrap: &str, topic: &str) -> Vec<i64> {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_indexes(vec![0])]);
    let mut stream = strata_tests::raw::connect(bootstrap);
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 0);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "{response:?}");
    partition
        .active_producers
        .iter()
        .map(|p| p.producer_id.0)
        .collect()
}

/// Sets the cluster-wide dynamic default of `producer.id.expiration.ms`.
fn set_producer_id_expiration(bootstrap: &str, ms: &str) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::protocol::StrBytes;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4) // BROKER; an empty name is the cluster default
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("producer.id.expiration.ms"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(ms.to_owned())))]),
    ]);
    let mut stream = strata_tests::raw::connect(bootstrap);
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 1);
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
}

/// Polls until `producer` is no longer listed for `topic`-0; panics after `within`.
fn wait_until_gone(bootstrap: &str, topic: &str, producer: i64, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while listed_producers(bootstrap, topic).contains(&producer) {
        assert!(
            std::time::Instant::now() < deadline,
            "producer {producer} still listed after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `producer.id.expiration.ms` (dynamic) and `producer.id.expiration.check.interval.ms`: an
/// idle idempotent producer's state goes, so its next batch is taken at any sequence as
/// Kafka takes an unknown producer's; one still writing stays; a kill -9 and a restart,
/// which rebuild the state from the log, do not bring the expired one back.
#[test]
fn idle_producers_expire_after_producer_id_expiration_ms() {
    let mut node = Node::start(strata_tests::NodeOptions {
        properties: vec![(
            "producer.id.expiration.check.interval.ms".into(),
            "200".into(),
        )],
        ..Default::default()
    });
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "expiry", 1, &[]),
    );
    let idle = init_producer_id(&bootstrap);
    let busy = init_producer_id(&bootstrap);
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(busy, 0, 1)),
        (0, 3)
    );
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 10, 1)).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER while its state is kept"
    );

    // Under the default (one day) nothing expires.
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(listed_producers(&bootstrap, "expiry"), {
        let mut both = vec![idle.0, busy.0];
        both.sort();
        both
    });

    // Lowered at runtime to 3 s: the idle producer (last write over 1.5 s ago) goes within
    // about 1.5 s more; the busy one keeps writing and stays.
    set_producer_id_expiration(&bootstrap, "3000");
    let lowered = std::time::Instant::now();
    let mut seq = 1;
    while listed_producers(&bootstrap, "expiry").contains(&idle.0) {
        assert!(
            lowered.elapsed() < Duration::from_secs(10),
            "the idle producer was not expired"
        );
        assert_eq!(
            raw_produce(&bootstrap, "expiry", 0, batch(busy, seq, 1)).0,
            0
        );
        seq += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        listed_producers(&bootstrap, "expiry").contains(&busy.0),
        "a producer that keeps writing is kept"
    );

    // Its state is gone: a batch at any sequence is taken, and starts the state again.
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 10, 1)).0,
        0
    );
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 20, 1)).0,
        45,
        "its state is kept again from that batch on"
    );
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 11, 1)).0,
        0
    );

    // Let both go idle and expire, then kill the node: the state is rebuilt from the log
    // (the snapshot predates the writes), whose batches are older than the setting.
    wait_until_gone(&bootstrap, "expiry", idle.0, Duration::from_secs(10));
    wait_until_gone(&bootstrap, "expiry", busy.0, Duration::from_secs(10));
    node.kill();
    node.restart();
    assert_eq!(
        listed_producers(&bootstrap, "expiry"),
        Vec::<i64>::new(),
        "expired producers stay expired across a restart"
    );
    assert_eq!(
        raw_produce(&bootstrap, "expiry", 0, batch(idle, 50, 1)).0,
        0
    );
}

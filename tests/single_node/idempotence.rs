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

fn batch(id: (i64, i16), seq: i32, count: usize) -> bytes::Bytes {
    let identity = ProducerIdentity {
        producer_id: id.0,
        producer_epoch: id.1,
        base_sequence: seq,
    };
    encode_batch_as(
        &records(&format!("s{seq}"), count),
        Compression::None,
        Some(identity),
    )
    .unwrap()
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

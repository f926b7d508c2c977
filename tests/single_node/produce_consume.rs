//! Records go in with librdkafka and come back intact.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer, raw_produce, read_all, records};

const BASE_TS: i64 = 1_700_000_000_000;

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.extend_from_slice(&[0, 1, 2, 0xff, 0xfe]);
    v.extend(std::iter::repeat_n(b'x', i % 300));
    v
}

#[test]
fn keyed_records_come_back_in_order_with_keys_values_headers_and_timestamps() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    let total = 400;
    run_bounded(Duration::from_secs(60), async {
        create_topic(&bootstrap, "keyed", 4, &[]).await;
        let producer = producer(&bootstrap, &[("acks", "all")]);
        let sends: Vec<_> = (0..total)
            .map(|i| {
                let key = format!("key-{}", i % 20);
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "seq",
                        value: Some(&i.to_string()),
                    })
                    .insert(Header {
                        key: "bin",
                        value: Some(&[0u8, 1, 2][..]),
                    });
                let payload = value(i);
                let record = FutureRecord::to("keyed")
                    .key(key.as_bytes())
                    .payload(&payload)
                    .timestamp(BASE_TS + i as i64)
                    .headers(headers);
                let fut = producer.send_result(record).expect("queue");
                async move { fut.await.expect("delivery").expect("acknowledged") }
            })
            .collect();
        for send in sends {
            send.await;
        }
    });
    let got = read_all(&bootstrap, "keyed", 4, total, Duration::from_secs(30));
    assert_eq!(got.len(), total, "every acknowledged record is read back");
    let mut partition_of_key: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut last_seq_of_key: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    for g in &got {
        let key = g.key.clone().expect("key");
        assert_eq!(
            *partition_of_key.entry(key.clone()).or_insert(g.partition),
            g.partition,
            "a key stays in one partition"
        );
        let seq: i64 = String::from_utf8(g.headers[0].1.clone().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(g.headers[0].0, "seq");
        assert_eq!(g.headers[1], ("bin".to_owned(), Some(vec![0, 1, 2])));
        assert_eq!(g.value.as_deref(), Some(&value(seq as usize)[..]));
        assert_eq!(g.timestamp, Some(BASE_TS + seq));
        let last = last_seq_of_key.insert(key, seq).unwrap_or(-1);
        assert!(seq > last, "records of one key keep their order");
        let expected_offset = next_offset.entry(g.partition).or_insert(0);
        assert_eq!(
            g.offset, *expected_offset,
            "offsets are dense within a partition"
        );
        *expected_offset += 1;
    }
}

#[test]
fn every_compression_codec_round_trips() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        run_bounded(Duration::from_secs(30), async {
            create_topic(&bootstrap, &topic, 1, &[]).await;
            let producer = producer(
                &bootstrap,
                &[("compression.type", codec), ("linger.ms", "50")],
            );
            let sends: Vec<_> = (0..300)
                .map(|i| {
                    let payload = value(i);
                    let fut = producer
                        .send_result(FutureRecord::to(&topic).key("k").payload(&payload))
                        .expect("queue");
                    async move { fut.await.expect("delivery").expect("acknowledged") }
                })
                .collect();
            for send in sends {
                send.await;
            }
        });
        let got = read_all(&bootstrap, &topic, 1, 300, Duration::from_secs(20));
        let values: Vec<_> = got.iter().map(|g| g.value.clone().unwrap()).collect();
        let expected: Vec<_> = (0..300).map(value).collect();
        assert_eq!(values, expected, "codec {codec}");
    }
}

#[test]
fn metadata_auto_creates_topics_with_num_partitions() {
    let node = Node::start(NodeOptions::default().property("num.partitions", "3"));
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        let producer = producer(&bootstrap, &[]);
        producer
            .send(
                FutureRecord::to("auto-made").key("k").payload("v"),
                Duration::from_secs(10),
            )
            .await
            .expect("produce to an auto-created topic");
        let mut cluster = client::Cluster::connect(&bootstrap).await.unwrap();
        let topics = cluster.metadata(Some(&["auto-made"]), false).await.unwrap();
        assert_eq!(topics[0].partitions.len(), 3);
    });
}

#[test]
fn produce_to_a_missing_topic_without_auto_create_is_unknown_topic() {
    let node = Node::start(NodeOptions::default().property("auto.create.topics.enable", "false"));
    let batch = client::encode_batch(&records("x", 1), client::Compression::None).unwrap();
    let (code, _) = raw_produce(&node.bootstrap(), "nope", 0, batch);
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    run_bounded(Duration::from_secs(10), async {
        let mut cluster = client::Cluster::connect(&node.bootstrap()).await.unwrap();
        let err = cluster.metadata(Some(&["nope"]), true).await.unwrap_err();
        assert!(err.to_string().contains("error 3"), "{err}");
    });
}

#[test]
fn batch_over_max_message_bytes_is_refused_and_not_appended() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(20), async {
        create_topic(&bootstrap, "small", 1, &[("max.message.bytes", "2000")]).await;
    });
    let mut big = records("big", 1);
    big[0].value = Some(bytes::Bytes::from(vec![7u8; 5000]));
    let (code, _) = raw_produce(
        &bootstrap,
        "small",
        0,
        client::encode_batch(&big, client::Compression::None).unwrap(),
    );
    assert_eq!(code, 10, "MESSAGE_TOO_LARGE");
    let (code, offset) = raw_produce(
        &bootstrap,
        "small",
        0,
        client::encode_batch(&records("ok", 3), client::Compression::None).unwrap(),
    );
    assert_eq!((code, offset), (0, 0), "the refused batch took no offsets");
}

#[test]
fn long_poll_fetch_wakes_when_data_arrives() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        create_topic(&bootstrap, "poll", 1, &[]).await;
        let mut cluster = client::Cluster::connect(&bootstrap).await.unwrap();
        let writer = {
            let bootstrap = bootstrap.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut c = client::Cluster::connect(&bootstrap).await.unwrap();
                let batch =
                    client::encode_batch(&records("late", 2), client::Compression::None).unwrap();
                c.produce("poll", 0, batch).await.unwrap();
            })
        };
        let started = std::time::Instant::now();
        let (bytes, hw) = cluster
            .fetch("poll", 0, 0, Duration::from_secs(10))
            .await
            .unwrap();
        let waited = started.elapsed();
        writer.await.unwrap();
        assert_eq!(hw, 2);
        assert_eq!(client::decode_records(&bytes).unwrap().len(), 2);
        assert!(
            waited >= Duration::from_millis(400),
            "the fetch waited for data ({waited:?})"
        );
        assert!(
            waited < Duration::from_secs(5),
            "the fetch woke when data arrived, not at max wait ({waited:?})"
        );
    });
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(
            &bootstrap,
            "stamped",
            1,
            &[("message.timestamp.type", "LogAppendTime")],
        ),
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // The records carry a creation time in 2023; the broker's time replaces it.
    let (code, _) = raw_produce(
        &bootstrap,
        "stamped",
        0,
        client::encode_batch(&records("t", 3), client::Compression::None).unwrap(),
    );
    assert_eq!(code, 0);
    let got = read_all(&bootstrap, "stamped", 1, 3, Duration::from_secs(20));
    assert_eq!(got.len(), 3);
    for g in got {
        let ts = g.timestamp.unwrap();
        assert!(
            ts >= before && ts < before + 60_000,
            "timestamp {ts} is the append time"
        );
    }
}

/// acks=0 gets no answer, yet every record is appended, in order, on one partition.
#[test]
fn acks_0_records_are_all_appended_in_order() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    let total = 3000;
    run_bounded(Duration::from_secs(60), async {
        create_topic(&bootstrap, "unanswered", 1, &[]).await;
        let producer = producer(&bootstrap, &[("acks", "0"), ("linger.ms", "0")]);
        let sends: Vec<_> = (0..total)
            .map(|i| {
                let payload = format!("u{i}");
                producer
                    .send_result(FutureRecord::<(), _>::to("unanswered").payload(&payload))
                    .expect("queue")
            })
            .collect();
        for send in sends {
            send.await.expect("delivery").expect("sent");
        }
    });
    let got = read_all(&bootstrap, "unanswered", 1, total, Duration::from_secs(30));
    let values: Vec<String> = got
        .iter()
        .map(|g| String::from_utf8(g.value.clone().unwrap()).unwrap())
        .collect();
    let expected: Vec<String> = (0..total).map(|i| format!("u{i}")).collect();
    assert_eq!(values, expected);
}

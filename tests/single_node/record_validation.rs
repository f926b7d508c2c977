//! Poison-pill batches from a hostile client (Kafka's `LogValidator` checks): each is refused
//! with Kafka's error code, nothing of it is appended (the log end offset stays), and the
//! partition stays readable. Also: clients cannot write to or delete from internal topics.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use segment_store::testing::{compress_batch, with_payload, BatchBuilder, KeyValueRef};
use segment_store::{BatchHeader, BATCH_HEADER_LEN};
use strata_tests::raw::{call, connect};
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, list_offset, raw_produce, raw_produce_response, read_all};

const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// A node with topic `topic` (1 partition, `configs`) holding two good records.
fn node_with(topic: &str, configs: &[(&str, &str)]) -> Node {
    let node = Node::start(NodeOptions::default().property("offsets.topic.num.partitions", "3"));
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, topic, 1, configs),
    );
    assert_eq!(raw_produce(&bootstrap, topic, 0, good(2)).0, 0);
    node
}

/// A valid batch of `n` keyed records stamped now.
fn good(n: usize) -> Bytes {
    let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| (format!("k{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect();
    let refs: Vec<KeyValueRef<'_>> = kvs
        .iter()
        .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
        .collect();
    BatchBuilder::new(0)
        .timestamp(now_ms())
        .key_values(&refs)
        .build()
        .into()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn log_end(bootstrap: &str, topic: &str, partition: i32) -> i64 {
    let mut end = 0;
    run_bounded(Duration::from_secs(10), async {
        end = list_offset(bootstrap, topic, partition, -1).await;
    });
    end
}

/// Sends `batch`, asserts Kafka's `code` and that the log end offset did not move; returns
/// the partition's response.
fn refused(
    node: &Node,
    topic: &str,
    batch: impl Into<Bytes>,
    code: i16,
) -> PartitionProduceResponse {
    let bootstrap = node.bootstrap();
    let before = log_end(&bootstrap, topic, 0);
    let response = raw_produce_response(&bootstrap, topic, 0, batch.into());
    assert_eq!(response.error_code, code, "{response:?}");
    assert_eq!(response.base_offset, -1);
    assert_eq!(
        log_end(&bootstrap, topic, 0),
        before,
        "nothing was appended"
    );
    response
}

/// `batch` with the i32 at header position `at` set to `value` (CRC recomputed).
fn with_i32(batch: &[u8], at: usize, value: i32) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[at..at + 4].copy_from_slice(&value.to_be_bytes());
    let h = BatchHeader::parse(&b).unwrap();
    with_payload(&b, h.attributes, &batch[BATCH_HEADER_LEN..])
}

const LAST_OFFSET_DELTA: usize = 23;
const RECORDS_COUNT: usize = 57;

#[test]
fn records_count_that_differs_from_the_records_is_invalid_record() {
    let node = node_with("count", &[]);
    let b = good(3);
    // The offsets and the count agree with each other, not with the three records.
    let more = with_i32(&with_i32(&b, RECORDS_COUNT, 4), LAST_OFFSET_DELTA, 3);
    let response = refused(&node, "count", more, INVALID_RECORD);
    assert!(response.error_message.is_some());
    let fewer = with_i32(&with_i32(&b, RECORDS_COUNT, 2), LAST_OFFSET_DELTA, 1);
    refused(&node, "count", fewer, INVALID_RECORD);
    // The count disagrees with the offset range.
    refused(
        &node,
        "count",
        with_i32(&b, RECORDS_COUNT, 5),
        INVALID_RECORD,
    );
}

#[test]
fn a_huge_last_offset_delta_burns_no_offsets() {
    let node = node_with("burn", &[]);
    let one = good(1);
    refused(
        &node,
        "burn",
        with_i32(&one, LAST_OFFSET_DELTA, 1_000_000),
        INVALID_RECORD,
    );
    // Count and delta agree, but the batch holds one record.
    let claims = with_i32(
        &with_i32(&one, LAST_OFFSET_DELTA, i32::MAX - 1),
        RECORDS_COUNT,
        i32::MAX,
    );
    refused(&node, "burn", claims, INVALID_RECORD);
    assert_eq!(raw_produce(&node.bootstrap(), "burn", 0, good(1)).0, 0);
    assert_eq!(log_end(&node.bootstrap(), "burn", 0), 3);
}

/// Bytes no codec decodes, different for each call.
fn garbage(seed: u32) -> Vec<u8> {
    (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[test]
fn a_compressed_batch_of_random_bytes_is_invalid_record_for_every_codec() {
    let node = node_with("garbage", &[]);
    let b = good(2);
    for codec in 1..=4 {
        let bad = with_payload(&b, codec, &garbage(codec as u32));
        let response = refused(&node, "garbage", bad, INVALID_RECORD);
        let message = response.error_message.expect("a message").to_string();
        assert!(message.contains("decompress"), "codec {codec}: {message}");
    }
    // Real compressed batches still pass.
    for codec in 1..=4 {
        let ok = raw_produce_response(
            &node.bootstrap(),
            "garbage",
            0,
            compress_batch(&b, codec).into(),
        );
        assert_eq!(ok.error_code, 0, "codec {codec}");
    }
}

#[test]
fn codec_ids_5_6_and_7_are_invalid_record() {
    let node = node_with("codecs", &[]);
    let b = good(2);
    for codec in 5..=7 {
        let bad = with_payload(&b, codec, &b[BATCH_HEADER_LEN..]);
        let response = refused(&node, "codecs", bad, INVALID_RECORD);
        let message = response.error_message.unwrap().to_string();
        assert!(message.contains("compression type"), "{message}");
    }
}

#[test]
fn a_record_length_that_overruns_the_batch_is_invalid_record() {
    let node = node_with("overrun", &[]);
    let b = good(2);
    let mut payload = b[BATCH_HEADER_LEN..].to_vec();
    // First record's length varint: 2^20 bytes.
    payload[0] = 0x80;
    payload.insert(1, 0x80);
    payload.insert(2, 0x80);
    payload.insert(3, 0x01);
    refused(
        &node,
        "overrun",
        with_payload(&b, 0, &payload),
        INVALID_RECORD,
    );
    refused(
        &node,
        "overrun",
        compress_batch(&with_payload(&b, 0, &payload), 3),
        INVALID_RECORD,
    );
}

#[test]
fn records_truncated_mid_way_are_invalid_record() {
    let node = node_with("truncated", &[]);
    let b = good(3);
    let payload = &b[BATCH_HEADER_LEN..];
    let cut = with_payload(&b, 0, &payload[..payload.len() - 3]);
    refused(&node, "truncated", cut.clone(), INVALID_RECORD);
    refused(&node, "truncated", compress_batch(&cut, 1), INVALID_RECORD);
}

#[test]
fn bytes_after_the_last_record_are_invalid_record() {
    let node = node_with("trailing", &[]);
    let b = good(2);
    let mut payload = b[BATCH_HEADER_LEN..].to_vec();
    payload.extend_from_slice(&[2, 0, 0]);
    let extra = with_payload(&b, 0, &payload);
    refused(&node, "trailing", extra.clone(), INVALID_RECORD);
    refused(&node, "trailing", compress_batch(&extra, 4), INVALID_RECORD);
}

#[test]
fn a_control_batch_from_a_client_is_invalid_record() {
    let node = node_with("control", &[]);
    let b = BatchBuilder::new(0)
        .timestamp(now_ms())
        .producer(1, 0, 0)
        .attributes(0x30)
        .build();
    let response = refused(&node, "control", b, INVALID_RECORD);
    let message = response.error_message.unwrap().to_string();
    assert!(message.contains("control records"), "{message}");
}

#[test]
fn a_transactional_batch_without_a_transaction_is_invalid_txn_state() {
    let node = node_with("txn", &[]);
    let b = BatchBuilder::new(0)
        .timestamp(now_ms())
        .producer(1, 0, 0)
        .attributes(0x10)
        .build();
    refused(&node, "txn", b, INVALID_TXN_STATE);
}

#[test]
fn records_without_key_on_a_compacted_topic_are_listed_in_record_errors() {
    let node = node_with("compacted", &[("cleanup.policy", "compact")]);
    let b = BatchBuilder::new(0)
        .timestamp(now_ms())
        .key_values(&[(Some(b"k"), Some(b"v")), (None, Some(b"v")), (None, None)])
        .build();
    let response = refused(&node, "compacted", compress_batch(&b, 2), INVALID_RECORD);
    let indexes: Vec<i32> = response
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, [1, 2]);
    let message = response.record_errors[0]
        .batch_index_error_message
        .as_ref()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("Compacted topic cannot accept message without key"),
        "{message}"
    );
}

#[test]
fn timestamps_outside_the_topic_bounds_are_invalid_timestamp() {
    let node = node_with(
        "stamps",
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    );
    let now = now_ms();
    let b = BatchBuilder::new(0)
        .timestamps(&[now, now - 7_200_000, now + 7_200_000, now])
        .build();
    let response = refused(&node, "stamps", b, INVALID_TIMESTAMP);
    let indexes: Vec<i32> = response
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, [1, 2]);
    assert_eq!(
        response.error_message.unwrap().to_string(),
        "One or more records have been rejected due to invalid timestamp"
    );
}

#[test]
fn a_librdkafka_consumer_reads_past_a_refused_garbage_batch() {
    let node = node_with("poisoned", &[]);
    let bootstrap = node.bootstrap();
    for codec in 1..=4 {
        let bad = with_payload(&good(3), codec, &garbage(100 + codec as u32));
        assert_eq!(
            raw_produce_response(&bootstrap, "poisoned", 0, bad.into()).error_code,
            INVALID_RECORD
        );
    }
    assert_eq!(
        raw_produce(
            &bootstrap,
            "poisoned",
            0,
            compress_batch(&good(3), 3).into()
        )
        .0,
        0
    );
    let got = read_all(&bootstrap, "poisoned", 1, 5, Duration::from_secs(20));
    let offsets: Vec<i64> = got.iter().map(|g| g.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4], "every good record, none stuck");
    let values: Vec<&[u8]> = got.iter().map(|g| g.value.as_deref().unwrap()).collect();
    assert_eq!(values, [&b"v0"[..], b"v1", b"v0", b"v1", b"v2"]);
}

#[test]
fn clients_cannot_append_to_or_delete_from_consumer_offsets() {
    use coordinator::group::records::{offset_key, offset_value, partition_for, CommittedOffset};
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::DeleteRecordsRequest;
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let mut node = node_with("tracked", &[]);
    let bootstrap = node.bootstrap();
    let member = |bootstrap: &str| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "victims")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    };
    let tracked = || {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("tracked", 0, Offset::Offset(1))
            .unwrap();
        list
    };
    member(&bootstrap)
        .commit(&tracked(), CommitMode::Sync)
        .expect("commit");
    // An OffsetCommit record moving the group to offset 999, as the coordinator writes it.
    let key = offset_key("victims", "tracked", 0);
    let value = offset_value(&CommittedOffset {
        offset: 999,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: now_ms(),
    });
    let injected = BatchBuilder::new(0)
        .timestamp(now_ms())
        .key_values(&[(Some(&key), Some(&value))])
        .build();
    let partition = partition_for("victims", 3);
    let before = log_end(&bootstrap, "__consumer_offsets", partition);
    let response =
        raw_produce_response(&bootstrap, "__consumer_offsets", partition, injected.into());
    assert_eq!(response.error_code, INVALID_TOPIC_EXCEPTION, "{response:?}");
    assert_eq!(log_end(&bootstrap, "__consumer_offsets", partition), before);
    // DeleteRecords on it is refused as well.
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("__consumer_offsets")))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(-1)])]);
    let (_, deleted) = call(&mut connect(&bootstrap), &request, 2);
    assert_eq!(
        deleted.topics[0].partitions[0].error_code,
        INVALID_TOPIC_EXCEPTION
    );
    // Group state, replayed from the log after a restart, is what the group committed.
    node.stop();
    node.restart();
    let committed = member(&bootstrap)
        .committed_offsets(tracked(), Duration::from_secs(15))
        .expect("OffsetFetch");
    assert_eq!(
        committed.elements()[0].offset(),
        Offset::Offset(1),
        "the injected commit was not replayed"
    );
}

/// A message set of one uncompressed message in the old format `magic` (0 or 1): offset,
/// length, CRC (left zero: Kafka judges the magic before the CRC), magic, attributes,
/// timestamp (magic 1), key and value.
fn old_format_message(magic: u8) -> Vec<u8> {
    let mut message = vec![magic, 0];
    if magic == 1 {
        message.extend_from_slice(&now_ms().to_be_bytes());
    }
    message.extend_from_slice(&(-1i32).to_be_bytes());
    message.extend_from_slice(&5i32.to_be_bytes());
    message.extend_from_slice(b"hello");
    let mut set = 0i64.to_be_bytes().to_vec();
    set.extend_from_slice(&(4 + message.len() as i32).to_be_bytes());
    set.extend_from_slice(&[0; 4]);
    set.extend_from_slice(&message);
    set
}

#[test]
fn old_format_message_sets_and_cut_batches_are_invalid_record_as_in_kafka() {
    const CORRUPT_MESSAGE: i16 = 2;
    let node = node_with("old-format", &[]);
    for magic in [0, 1] {
        let response = refused(
            &node,
            "old-format",
            old_format_message(magic),
            INVALID_RECORD,
        );
        assert_eq!(
            response.error_message.as_deref(),
            Some("Produce requests with version 9 are only allowed to contain record batches with magic version 2"),
        );
    }
    // A batch whose length runs past the records set is no batch at all for Kafka.
    let b = good(2);
    let response = refused(
        &node,
        "old-format",
        b[..b.len() - 1].to_vec(),
        INVALID_RECORD,
    );
    assert_eq!(
        response.error_message.as_deref(),
        Some("Produce requests with version 9 must have at least one record batch per partition"),
    );
    refused(&node, "old-format", b[..10].to_vec(), INVALID_RECORD);
    // A length below the smallest message is corrupt.
    let mut tiny = b.to_vec();
    tiny[8..12].copy_from_slice(&13i32.to_be_bytes());
    refused(&node, "old-format", tiny, CORRUPT_MESSAGE);
}

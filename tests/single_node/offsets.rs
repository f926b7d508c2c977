//! ListOffsets and DeleteRecords.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::{run_bounded, Node};

use crate::common::{create_topic, list_offset, raw_produce};

const BASE: i64 = 1_700_000_000_000;

fn produce_timed(bootstrap: &str, topic: &str, count: usize) {
    // One batch per record, so each record's timestamp is its batch's too.
    for i in 0..count {
        let record = client::OwnedRecord {
            offset: 0,
            timestamp: BASE + i as i64 * 1000,
            key: None,
            value: Some(bytes::Bytes::from(format!("t{i}"))),
            headers: vec![],
        };
        let batch = client::encode_batch(&[record], client::Compression::None).unwrap();
        let (code, offset) = raw_produce(bootstrap, topic, 0, batch);
        assert_eq!((code, offset), (0, i as i64));
    }
}

#[test]
fn list_offsets_answers_earliest_latest_max_timestamp_and_by_timestamp() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "timed", 1, &[]),
    );
    produce_timed(&bootstrap, "timed", 50);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let (low, high) = consumer
        .fetch_watermarks("timed", 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, 50));
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("timed", 0, Offset::Offset(BASE + 20_500))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        found.find_partition("timed", 0).unwrap().offset(),
        Offset::Offset(21)
    );
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("timed", 0, Offset::Offset(BASE + 10_000_000))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        found.find_partition("timed", 0).unwrap().offset(),
        Offset::End,
        "no record that late"
    );
    run_bounded(Duration::from_secs(10), async {
        assert_eq!(
            list_offset(&bootstrap, "timed", 0, -3).await,
            49,
            "max timestamp is the last record"
        );
    });
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "trimmed", 1, &[]),
    );
    produce_timed(&bootstrap, "trimmed", 30);
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("trimmed")))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(12)])]);
    let mut stream = strata_tests::raw::connect(&bootstrap);
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 2);
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 12));
    let too_far = request
        .clone()
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("trimmed")))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(31)])]);
    let (_, response) = strata_tests::raw::call(&mut stream, &too_far, 2);
    assert_eq!(
        response.topics[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE past the high watermark"
    );
    run_bounded(Duration::from_secs(10), async {
        assert_eq!(list_offset(&bootstrap, "trimmed", 0, -2).await, 12);
    });
    let got = crate::common::read_all(&bootstrap, "trimmed", 1, 18, Duration::from_secs(20));
    assert_eq!(
        got.first().map(|g| g.offset),
        Some(12),
        "consumers start at the new log start"
    );
    assert_eq!(got.len(), 18);
}

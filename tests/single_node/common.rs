//! Clients and checks shared by the single-node tests.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A librdkafka producer; `extra` overrides the defaults.
pub(crate) fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("creating a producer")
}

/// Produces one record to partition 0 of `topic` with `producer` (the test fails on an error
/// other than the broker's, naming `who`): the error code librdkafka reports, if any.
pub(crate) async fn produce_one(
    producer: &FutureProducer,
    topic: &str,
    who: &str,
) -> Option<RDKafkaErrorCode> {
    let sent = producer
        .send(
            FutureRecord::<(), _>::to(topic).payload("v").partition(0),
            Duration::from_secs(15),
        )
        .await;
    match sent {
        Ok(_) => None,
        Err((KafkaError::MessageProduction(code), _)) => Some(code),
        Err((other, _)) => panic!("producing to {topic} as {who}: {other}"),
    }
}

/// A librdkafka admin client.
pub(crate) fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("creating an admin client")
}

/// Creates a topic and fails the test if the broker refuses.
pub(crate) async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: Option<i64>,
}

/// Reads every partition from the beginning with a librdkafka consumer (no group) until
/// `expected` records arrived or `limit` passed; returns what it read.
pub(crate) fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    limit: Duration,
) -> Vec<Got> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka wants a group id even for assign(); nothing is committed.
        .set("group.id", "strata-tests-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("creating a consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("consumer error");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        got.push(Got {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp().to_millis(),
        });
    }
    got
}

/// Sends one Produce (v9, acks=all) of `batch` on a raw connection; returns the partition's
/// response.
pub(crate) fn raw_produce_response(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    batch: bytes::Bytes,
) -> kafka_protocol::messages::produce_response::PartitionProduceResponse {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let mut stream = strata_tests::raw::connect(bootstrap);
    let (_, mut response) = strata_tests::raw::call(&mut stream, &request, 9);
    response
        .responses
        .swap_remove(0)
        .partition_responses
        .swap_remove(0)
}

/// [`raw_produce_response`]'s error code and base offset.
pub(crate) fn raw_produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    batch: bytes::Bytes,
) -> (i16, i64) {
    let p = raw_produce_response(bootstrap, topic, partition, batch);
    (p.error_code, p.base_offset)
}

/// ListOffsets through Strata's client: -1 latest, -2 earliest, -3 max timestamp.
pub(crate) async fn list_offset(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> i64 {
    let mut cluster = client::Cluster::connect(bootstrap).await.expect("connect");
    cluster
        .list_offset(topic, partition, timestamp)
        .await
        .expect("ListOffsets")
}

/// `count` simple records `prefix-i`.
pub(crate) fn records(prefix: &str, count: usize) -> Vec<client::OwnedRecord> {
    (0..count)
        .map(|i| client::OwnedRecord {
            offset: 0,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(bytes::Bytes::from(format!("{prefix}-k{i}"))),
            value: Some(bytes::Bytes::from(format!("{prefix}-v{i}"))),
            headers: vec![],
        })
        .collect()
}

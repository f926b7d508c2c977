//! Client quotas: DescribeClientQuotas / AlterClientQuotas against the metadata image, and
//! produce and fetch byte rates enforced as Kafka does (throttle time in the response, the
//! connection muted meanwhile).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Statistics, TopicPartitionList};
use strata_tests::{free_port, raw, run_bounded, Node, NodeOptions};

use crate::common::create_topic;

const INVALID_REQUEST: i16 = 42;
const MIB: f64 = 1024.0 * 1024.0;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn entity(parts: &[(&str, Option<&str>)]) -> Vec<EntityData> {
    parts
        .iter()
        .map(|(kind, name)| {
            EntityData::default()
                .with_entity_type(s(kind))
                .with_entity_name(name.map(s))
        })
        .collect()
}

fn set(key: &str, value: f64) -> OpData {
    OpData::default().with_key(s(key)).with_value(value)
}

fn alter(
    addr: &str,
    entries: Vec<(Vec<EntityData>, Vec<OpData>)>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    let request = AlterClientQuotasRequest::default()
        .with_validate_only(validate_only)
        .with_entries(
            entries
                .into_iter()
                .map(|(entity, ops)| EntryData::default().with_entity(entity).with_ops(ops))
                .collect(),
        );
    let mut stream = raw::connect(addr);
    raw::call(&mut stream, &request, 1).1
}

fn describe(
    addr: &str,
    components: Vec<ComponentData>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    let request = DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(strict);
    let mut stream = raw::connect(addr);
    raw::call(&mut stream, &request, 1).1
}

/// Each described entry as `(entity parts, values)`, sorted.
type Described = Vec<(Vec<(String, Option<String>)>, Vec<(String, f64)>)>;

fn entries(response: &DescribeClientQuotasResponse) -> Described {
    assert_eq!(response.error_code, 0, "{response:?}");
    let mut out: Described = response
        .entries
        .as_ref()
        .expect("entries")
        .iter()
        .map(|e| {
            let mut parts: Vec<_> = e
                .entity
                .iter()
                .map(|p| {
                    (
                        p.entity_type.to_string(),
                        p.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            parts.sort();
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (parts, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn part(kind: &str, name: Option<&str>) -> (String, Option<String>) {
    (kind.to_owned(), name.map(str::to_owned))
}

#[test]
fn quotas_are_altered_validated_described_with_defaults_and_survive_a_restart() {
    let mut node = Node::start_default();
    let addr = node.bootstrap();
    let altered = alter(
        &addr,
        vec![
            (
                entity(&[("client-id", Some("x"))]),
                vec![set("producer_byte_rate", 1048576.0)],
            ),
            (
                entity(&[("user", None)]),
                vec![set("consumer_byte_rate", 2048.0)],
            ),
            (
                entity(&[("user", Some("alice")), ("client-id", None)]),
                vec![
                    set("request_percentage", 50.5),
                    set("controller_mutation_rate", 10.0),
                ],
            ),
            // Refused, each alone: an unknown key, an unknown entity type, a fractional
            // byte rate, an empty name.
            (entity(&[("client-id", Some("y"))]), vec![set("bogus", 1.0)]),
            (
                entity(&[("group", Some("g"))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
            (
                entity(&[("user", Some("bob"))]),
                vec![set("producer_byte_rate", 1.5)],
            ),
            (
                entity(&[("user", Some(""))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
        ],
        false,
    );
    let codes: Vec<i16> = altered.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        [
            0,
            0,
            0,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST
        ],
        "{altered:?}"
    );
    assert_eq!(
        altered.entries[3].error_message.as_deref(),
        Some("Invalid configuration key bogus")
    );
    // validate_only checks but stores nothing.
    let validated = alter(
        &addr,
        vec![
            (
                entity(&[("client-id", Some("v"))]),
                vec![set("producer_byte_rate", 5.0)],
            ),
            (entity(&[("client-id", Some("v"))]), vec![set("nope", 5.0)]),
        ],
        true,
    );
    assert_eq!(validated.entries[0].error_code, 0);
    assert_eq!(validated.entries[1].error_code, INVALID_REQUEST);

    let check = |addr: &str| {
        let all = entries(&describe(addr, vec![], false));
        assert_eq!(
            all,
            vec![
                (
                    vec![part("client-id", None), part("user", Some("alice"))],
                    vec![
                        ("controller_mutation_rate".to_owned(), 10.0),
                        ("request_percentage".to_owned(), 50.5)
                    ]
                ),
                (
                    vec![part("client-id", Some("x"))],
                    vec![("producer_byte_rate".to_owned(), 1048576.0)]
                ),
                (
                    vec![part("user", None)],
                    vec![("consumer_byte_rate".to_owned(), 2048.0)]
                ),
            ]
        );
        // The default user only (MATCH_TYPE_DEFAULT, strict).
        let defaults = entries(&describe(
            addr,
            vec![ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(1)
                .with_match(None)],
            true,
        ));
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].0, vec![part("user", None)]);
        // Exactly alice, not strict: her entity with the default client id.
        let alice = entries(&describe(
            addr,
            vec![ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(Some(s("alice")))],
            false,
        ));
        assert_eq!(alice.len(), 1);
        // A bad filter fails the whole request.
        let bad = describe(
            addr,
            vec![ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(None)],
            false,
        );
        assert_eq!(bad.error_code, INVALID_REQUEST);
    };
    check(&addr);
    node.stop();
    node.restart();
    check(&node.bootstrap());

    // Removing every value removes the entity.
    let removed = alter(
        &node.bootstrap(),
        vec![(
            entity(&[("client-id", Some("x"))]),
            vec![OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_remove(true)],
        )],
        false,
    );
    assert_eq!(removed.entries[0].error_code, 0);
    assert_eq!(
        entries(&describe(&node.bootstrap(), vec![], false)).len(),
        2
    );
}

/// Counts delivered bytes and the largest throttle time librdkafka reported.
#[derive(Default)]
struct Meter {
    delivered: AtomicU64,
    max_throttle_ms: AtomicI64,
}

#[derive(Clone, Default)]
struct MeterContext(Arc<Meter>);

impl ClientContext for MeterContext {
    fn stats(&self, statistics: Statistics) {
        for broker in statistics.brokers.values() {
            if let Some(throttle) = &broker.throttle {
                self.0
                    .max_throttle_ms
                    .fetch_max(throttle.max, Ordering::Relaxed);
            }
        }
    }
}

impl ProducerContext for MeterContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            let bytes = message.payload().map_or(0, <[u8]>::len);
            self.0.delivered.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

fn metered_producer(
    bootstrap: &str,
    client_id: &str,
) -> (ThreadedProducer<MeterContext>, Arc<Meter>) {
    let context = MeterContext::default();
    let meter = Arc::clone(&context.0);
    let producer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("linger.ms", "5")
        .set("acks", "1")
        .set("statistics.interval.ms", "500")
        .set("queue.buffering.max.kbytes", "2048")
        // Requests small against the quota's window, so one request's overshoot is small.
        .set("batch.size", "65536")
        .set("message.timeout.ms", "60000")
        .create_with_context(context)
        .expect("producer");
    (producer, meter)
}

/// Sends 10 KiB records to `topic` as fast as the producer's queue takes them, until
/// `stop`.
fn flood(producer: &ThreadedProducer<MeterContext>, topic: &str, stop: Instant) {
    let payload = vec![b'q'; 10 * 1024];
    while Instant::now() < stop {
        let record: BaseRecord<'_, (), [u8]> = BaseRecord::to(topic).payload(&payload);
        if producer.send(record).is_err() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A producer capped at 1 MiB/s by its client id gets that rate (measured over 22 s, two
/// whole periods of the quota's 11 sampled windows) and sees throttle times; a
/// producer with another client id on the same broker at the same time is not throttled.
#[test]
fn a_producer_capped_at_one_mib_per_second_gets_it_and_an_uncapped_one_is_not_throttled() {
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let node = Node::start(NodeOptions::default().property("metrics.listen", &metrics.to_string()));
    let bootstrap = node.bootstrap();
    let altered = alter(
        &bootstrap,
        vec![(
            entity(&[("client-id", Some("capped"))]),
            vec![set("producer_byte_rate", 1048576.0)],
        )],
        false,
    );
    assert_eq!(altered.entries[0].error_code, 0, "{altered:?}");
    run_bounded(
        Duration::from_secs(30),
        create_topic(&bootstrap, "quota-produce", 1, &[]),
    );

    let (capped, capped_meter) = metered_producer(&bootstrap, "capped");
    let (free, free_meter) = metered_producer(&bootstrap, "free");
    // Kafka's rate is sampled in 11 windows of 1 s: within one such period the quota lets
    // a burst through and then throttles, so the rate is measured over two whole periods.
    let measured = Duration::from_secs(22);
    let stop = Instant::now() + measured;
    // The uncapped producer sends for the first 8 s only, so both share the broker while
    // the capped one bursts and is throttled.
    let free_thread = std::thread::spawn(move || {
        flood(
            &free,
            "quota-produce",
            Instant::now() + Duration::from_secs(8),
        );
        drop(free);
    });
    flood(&capped, "quota-produce", stop);
    let bytes = capped_meter.delivered.load(Ordering::Relaxed);
    free_thread.join().expect("uncapped producer");
    let rate = bytes as f64 / measured.as_secs_f64() / MIB;
    let free_bytes = free_meter.delivered.load(Ordering::Relaxed) as f64;
    eprintln!(
        "capped: {rate:.3} MiB/s, max throttle {} ms; uncapped: {:.3} MiB/s over 8 s, max throttle {} ms",
        capped_meter.max_throttle_ms.load(Ordering::Relaxed),
        free_bytes / 8.0 / MIB,
        free_meter.max_throttle_ms.load(Ordering::Relaxed),
    );
    assert!(
        (0.9..=1.1).contains(&rate),
        "capped producer ran at {rate:.3} MiB/s"
    );
    assert!(capped_meter.max_throttle_ms.load(Ordering::Relaxed) > 0);
    assert_eq!(free_meter.max_throttle_ms.load(Ordering::Relaxed), 0);
    assert!(
        free_bytes / 8.0 / MIB > 1.5,
        "the uncapped producer was held back: {:.3} MiB/s",
        free_bytes / 8.0 / MIB
    );
    drop(capped);
    // The throttles show on the metrics page, per quota sensor.
    let (status, page) = strata_tests::http::get(metrics, "/metrics");
    assert_eq!(status, 200);
    let samples = strata_tests::http::samples(&page);
    let series = |name: &str, client: &str| {
        samples
            .get(&format!(
                "{name}{{quota=\"Produce\",user=\"\",client_id=\"{client}\"}}"
            ))
            .copied()
    };
    assert!(
        series("strata_quota_throttle_time_ms_total", "capped").unwrap_or(0.0) > 0.0,
        "{page}"
    );
    assert!(series("strata_quota_throttled_requests_total", "capped").unwrap_or(0.0) > 0.0);
    assert_eq!(series("strata_quota_throttle_time_ms_total", "free"), None);
}

/// A consumer capped at 256 KiB/s reads at that rate (over 22 s) and sees throttle times.
#[test]
fn a_consumer_capped_at_256_kib_per_second_reads_at_that_rate() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(30),
        create_topic(&bootstrap, "quota-fetch", 1, &[]),
    );
    // 12 MiB to read, unthrottled.
    let (producer, meter) = metered_producer(&bootstrap, "loader");
    let payload = vec![b'c'; 10 * 1024];
    for _ in 0..(12 * 1024 / 10) {
        loop {
            let record: BaseRecord<'_, (), [u8]> = BaseRecord::to("quota-fetch").payload(&payload);
            if producer.send(record).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).expect("flush");
    assert!(meter.delivered.load(Ordering::Relaxed) >= 12 * 1024 * 1024 - 10 * 1024);
    let altered = alter(
        &bootstrap,
        vec![(
            entity(&[("client-id", Some("slow-reader"))]),
            vec![set("consumer_byte_rate", 262144.0)],
        )],
        false,
    );
    assert_eq!(altered.entries[0].error_code, 0, "{altered:?}");

    let throttle = Arc::new(AtomicI64::new(0));
    #[derive(Clone)]
    struct ThrottleContext(Arc<AtomicI64>);
    impl ClientContext for ThrottleContext {
        fn stats(&self, statistics: Statistics) {
            for broker in statistics.brokers.values() {
                if let Some(t) = &broker.throttle {
                    self.0.fetch_max(t.max, Ordering::Relaxed);
                }
            }
        }
    }
    impl rdkafka::consumer::ConsumerContext for ThrottleContext {}
    let consumer: BaseConsumer<ThrottleContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("client.id", "slow-reader")
        .set("group.id", "quota-readers")
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "500")
        .set("max.partition.fetch.bytes", "65536")
        .create_with_context(ThrottleContext(Arc::clone(&throttle)))
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("quota-fetch", 0, rdkafka::Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    // Over two whole periods of the quota's 11 sampled windows, as for the producer.
    let start = Instant::now();
    let measured = Duration::from_secs(22);
    let mut read = 0u64;
    while start.elapsed() < measured {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            read += message.payload().map_or(0, <[u8]>::len) as u64;
        }
    }
    let bytes = read;
    let rate = bytes as f64 / measured.as_secs_f64() / 1024.0;
    eprintln!(
        "capped consumer: {rate:.1} KiB/s, max throttle {} ms, {read} bytes in all",
        throttle.load(Ordering::Relaxed)
    );
    assert!(
        (230.0..=282.0).contains(&rate),
        "capped consumer read at {rate:.1} KiB/s"
    );
    assert!(throttle.load(Ordering::Relaxed) > 0);
}

/// CreateTopics of `topics` (name, partitions) at `version`: each topic's error code, and
/// the response's throttle time.
fn create_topics(
    stream: &mut std::net::TcpStream,
    topics: &[(&str, i32)],
    version: i16,
) -> (Vec<i16>, i32) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    let request = CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|(name, partitions)| {
                    CreatableTopic::default()
                        .with_name(TopicName(s(name)))
                        .with_num_partitions(*partitions)
                        .with_replication_factor(1)
                })
                .collect(),
        )
        .with_timeout_ms(10_000);
    let (_, response) = raw::call(stream, &request, version);
    (
        response.topics.iter().map(|t| t.error_code).collect(),
        response.throttle_time_ms,
    )
}

#[test]
fn topic_mutations_past_the_controller_mutation_rate_are_refused_or_throttled() {
    const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
    let node = Node::start_default();
    let addr = node.bootstrap();
    // Two partition mutations per second for the raw client: a burst of 22 (11 windows).
    let altered = alter(
        &addr,
        vec![(
            entity(&[("client-id", Some("raw-test"))]),
            vec![set("controller_mutation_rate", 2.0)],
        )],
        false,
    );
    assert_eq!(altered.entries[0].error_code, 0);

    // The quota is in this node's image once AlterClientQuotas has answered.
    let mut stream = raw::connect(&addr);
    let (first, throttle) = create_topics(&mut stream, &[("m1", 10), ("m2", 10)], 7);
    assert_eq!(first, [0, 0]);
    assert_eq!(throttle, 0, "22 tokens, 20 taken: still within the quota");

    // The bucket has 2 left: the next topic is taken (down to -8, 4 s to refill) and the
    // one after it refused, as Kafka's strict quota does from CreateTopics v6.
    let (codes, throttle) = create_topics(&mut stream, &[("m3", 10), ("m4", 1)], 7);
    assert_eq!(codes, [0, THROTTLING_QUOTA_EXCEEDED]);
    assert!(
        (3_000..=4_000).contains(&throttle),
        "throttle {throttle} ms: about 4 s to refill 8 tokens at 2/s"
    );
    // Before v6 nothing is refused: the topic is created and the client throttled.
    let mut stream = raw::connect(&addr);
    let (codes, throttle) = create_topics(&mut stream, &[("m5", 2)], 5);
    assert_eq!(codes, [0]);
    assert!(throttle > 4_000, "throttle {throttle} ms");
    // Exactly the topics that were not refused exist.
    let image_topics = {
        let mut admin = raw::connect(&addr);
        use kafka_protocol::messages::MetadataRequest;
        let (_, metadata) = raw::call(
            &mut admin,
            &MetadataRequest::default().with_topics(None),
            12,
        );
        let mut names: Vec<String> = metadata
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(image_topics, ["m1", "m2", "m3", "m5"]);
}

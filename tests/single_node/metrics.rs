//! The metrics endpoint (`metrics.listen`): counters scraped from `/metrics` move by what
//! librdkafka produced, consumed and committed; `/health` and `/ready`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::http::{get, samples};
use strata_tests::{free_port, run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer, read_all};

/// A node serving the metrics endpoint on a free port, and that address.
fn node_with_metrics(options: NodeOptions) -> (Node, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let node = Node::start(options.property("metrics.listen", &addr.to_string()));
    (node, addr)
}

/// `/metrics` parsed, after checking it answers 200.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, page) = get(addr, "/metrics");
    assert_eq!(status, 200, "{page}");
    samples(&page)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} is missing from {samples:#?}"))
}

/// Polls `/ready` until it answers 200, failing after `limit`.
fn wait_ready(addr: SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, _) = get(addr, "/ready");
        if status == 200 {
            return;
        }
        assert_eq!(status, 503, "/ready answers 200 or 503");
        assert!(Instant::now() < deadline, "/ready not 200 within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn produce_fetch_and_commit_move_the_counters_by_what_was_sent() {
    let (node, addr) = node_with_metrics(NodeOptions::default());
    let bootstrap = node.bootstrap();
    wait_ready(addr, Duration::from_secs(10));
    assert_eq!(get(addr, "/health").0, 200);
    let topic = "metered";
    let records = 30;
    run_bounded(Duration::from_secs(60), async {
        create_topic(&bootstrap, topic, 1, &[]).await;
        let producer = producer(&bootstrap, &[("acks", "all")]);
        // One at a time: every record is its own Produce request.
        for i in 0..records {
            let payload = format!("value-{i:04}");
            producer
                .send_result(FutureRecord::<(), _>::to(topic).payload(&payload))
                .expect("queue")
                .await
                .expect("delivery")
                .expect("acknowledged");
        }
    });
    let produced = scrape(addr);
    let series = |name: &str| format!("{name}{{topic=\"{topic}\"}}");
    let partition = |name: &str| format!("{name}{{topic=\"{topic}\",partition=\"0\"}}");
    assert_eq!(
        value(&produced, &series("strata_topic_messages_in_total")),
        records as f64
    );
    assert_eq!(
        value(&produced, &partition("strata_log_end_offset")),
        records as f64
    );
    assert_eq!(
        value(&produced, &partition("strata_partition_high_watermark")),
        records as f64
    );
    // Only producers wrote the log, so it holds exactly the bytes they sent.
    let size = value(&produced, &partition("strata_log_size_bytes"));
    assert!(size > (records * 10) as f64, "{size}");
    assert_eq!(
        value(&produced, &series("strata_topic_bytes_in_total")),
        size
    );
    assert_eq!(
        value(&produced, &series("strata_topic_bytes_out_total")),
        0.0
    );
    assert_eq!(
        value(&produced, "strata_requests_total{request=\"Produce\"}"),
        records as f64
    );
    assert_eq!(
        value(
            &produced,
            "strata_request_total_time_seconds_count{request=\"Produce\"}"
        ),
        records as f64
    );
    assert!(value(&produced, "strata_replica_manager_leader_count") >= 1.0);
    assert_eq!(
        value(
            &produced,
            "strata_replica_manager_under_replicated_partitions"
        ),
        0.0
    );
    assert!(value(&produced, "strata_socket_server_connection_creation_total") >= 1.0);
    assert!(value(&produced, "process_open_fds") > 0.0);
    assert!(value(&produced, "strata_process_memory_maps") > 0.0);
    assert_eq!(
        value(&produced, "strata_raft_current_state{state=\"leader\"}"),
        1.0
    );

    let got = read_all(&bootstrap, topic, 1, records, Duration::from_secs(30));
    assert_eq!(got.len(), records);
    let consumed = scrape(addr);
    // Each record went to the one consumer once.
    assert_eq!(
        value(&consumed, &series("strata_topic_bytes_out_total")),
        size
    );
    let fetches = value(&consumed, "strata_requests_total{request=\"Fetch\"}");
    assert!(fetches >= 1.0, "{fetches}");

    let committed = 12;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "metered-group")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(committed))
        .expect("offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    let after_commit = scrape(addr);
    let group =
        |name: &str| format!("{name}{{group=\"metered-group\",topic=\"{topic}\",partition=\"0\"}}");
    assert_eq!(
        value(
            &after_commit,
            &group("strata_consumer_group_committed_offset")
        ),
        committed as f64
    );
    assert_eq!(
        value(&after_commit, &group("strata_consumer_group_lag")),
        (records as i64 - committed) as f64
    );
    assert!(
        value(
            &after_commit,
            "strata_requests_total{request=\"OffsetCommit\"}"
        ) >= 1.0
    );
}

#[test]
fn ready_is_503_until_the_broker_registers() {
    // A broker whose only voter does not exist never registers: it runs, but is not ready.
    let voter_port = free_port();
    let (node, addr) = node_with_metrics(NodeOptions {
        node_id: 2,
        roles: Some("broker".into()),
        voters: Some(format!("1@127.0.0.1:{voter_port}")),
        ..NodeOptions::default()
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert_eq!(get(addr, "/health").0, 200);
        assert_eq!(get(addr, "/ready").0, 503);
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = scrape(addr);
    assert!(value(&page, "process_open_fds") > 0.0);
    assert_eq!(value(&page, "strata_replica_manager_partition_count"), 0.0);
    assert_eq!(get(addr, "/nothing").0, 404);
    drop(node);
}

#[test]
fn metrics_listen_defaults_to_off() {
    let node = Node::start_default();
    assert!(
        !node.log().contains("serving /metrics"),
        "no endpoint without metrics.listen:\n{}",
        node.log()
    );
}

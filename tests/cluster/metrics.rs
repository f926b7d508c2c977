//! The metrics endpoint across a three-node cluster: only the leader counts produced records
//! in, followers count them as replication bytes, and the leader's partition health follows a
//! follower's death and return.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use strata_tests::http::{get, samples};
use strata_tests::{free_port_on, run_bounded, Node, NodeOptions};

const TOPIC: &str = "metered";
const RECORDS: usize = 20;

/// Three voting brokers, node `i` on `127.0.0.i` with its metrics endpoint there.
fn start() -> Vec<(Node, SocketAddr)> {
    let hosts: Vec<String> = (1..=3).map(|i| format!("127.0.0.{i}")).collect();
    let controller_ports: Vec<u16> = hosts.iter().map(|h| free_port_on(h)).collect();
    let voters: Vec<String> = (0..3)
        .map(|i| format!("{}@{}:{}", i + 1, hosts[i], controller_ports[i]))
        .collect();
    let voters = voters.join(",");
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let metrics: SocketAddr = format!("{host}:{}", free_port_on(host))
                .parse()
                .expect("address");
            let options = NodeOptions {
                node_id: i as i32 + 1,
                host: host.clone(),
                voters: Some(voters.clone()),
                controller_port: Some(controller_ports[i]),
                ..NodeOptions::default()
            }
            .property("replica.lag.time.max.ms", "1500")
            .property("metrics.listen", &metrics.to_string());
            (Node::start(options), metrics)
        })
        .collect()
}

fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, page) = get(addr, "/metrics");
    assert_eq!(status, 200, "{page}");
    samples(&page)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Scrapes every address in `addrs` until `done` holds for the pages, failing after `limit`.
fn wait_for(
    addrs: &[SocketAddr],
    limit: Duration,
    what: &str,
    done: impl Fn(&[BTreeMap<String, f64>]) -> bool,
) -> Vec<BTreeMap<String, f64>> {
    let deadline = Instant::now() + limit;
    loop {
        let pages: Vec<_> = addrs.iter().map(|a| scrape(*a)).collect();
        if done(&pages) {
            return pages;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}: {pages:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn replication_and_partition_health_show_on_the_right_nodes() {
    let mut nodes = start();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();
    for addr in &addrs {
        let deadline = Instant::now() + Duration::from_secs(15);
        while get(*addr, "/ready").0 != 200 {
            assert!(Instant::now() < deadline, "{addr} not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let bootstrap: String = nodes
        .iter()
        .map(|(n, _)| n.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    run_bounded(Duration::from_secs(60), async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("admin");
        // Every broker must be registered and known before three replicas can be placed.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let topic =
                NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            let results = admin
                .create_topics(&[topic], &options)
                .await
                .expect("CreateTopics");
            match results.into_iter().next().expect("one result") {
                Ok(_) => break,
                Err((_, RDKafkaErrorCode::InvalidReplicationFactor))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err((t, e)) => panic!("creating {t}: {e}"),
            }
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("acks", "all")
            .set("message.timeout.ms", "20000")
            .create()
            .expect("producer");
        for i in 0..RECORDS {
            let payload = format!("replicated-{i:03}");
            producer
                .send_result(FutureRecord::<(), _>::to(TOPIC).payload(&payload))
                .expect("queue")
                .await
                .expect("delivery")
                .expect("acknowledged");
        }
    });
    let series = format!("{{topic=\"{TOPIC}\"}}");
    let partition = format!("{{topic=\"{TOPIC}\",partition=\"0\"}}");
    // Acks=all: the followers hold every record; they count them once fetched.
    let pages = wait_for(
        &addrs,
        Duration::from_secs(10),
        "followers caught up",
        |pages| {
            pages
                .iter()
                .all(|p| value(p, &format!("strata_log_end_offset{partition}")) == RECORDS as f64)
        },
    );
    let leader = pages
        .iter()
        .position(|p| value(p, "strata_replica_manager_leader_count") == 1.0)
        .expect("a node leads the partition");
    let size = value(&pages[leader], &format!("strata_log_size_bytes{partition}"));
    for (i, page) in pages.iter().enumerate() {
        let messages_in = value(page, &format!("strata_topic_messages_in_total{series}"));
        let bytes_in = value(page, &format!("strata_topic_bytes_in_total{series}"));
        let replicated_in = value(
            page,
            &format!("strata_topic_replication_bytes_in_total{series}"),
        );
        if i == leader {
            assert_eq!(messages_in, RECORDS as f64);
            assert_eq!(bytes_in, size);
            assert_eq!(replicated_in, 0.0);
            let replicated_out = value(
                page,
                &format!("strata_topic_replication_bytes_out_total{series}"),
            );
            assert_eq!(
                replicated_out,
                2.0 * size,
                "both followers fetched everything once"
            );
        } else {
            assert_eq!(messages_in, 0.0, "node {}", i + 1);
            assert_eq!(replicated_in, size, "node {}", i + 1);
            assert_eq!(value(page, "strata_replica_manager_leader_count"), 0.0);
        }
        assert_eq!(value(page, "strata_replica_manager_partition_count"), 1.0);
    }
    let active: f64 = pages
        .iter()
        .map(|p| value(p, "strata_controller_active_controller_count"))
        .sum();
    assert_eq!(active, 1.0, "one active controller");
    let global: f64 = pages
        .iter()
        .map(|p| value(p, "strata_controller_global_partition_count"))
        .sum();
    assert_eq!(global, 1.0);
    assert_eq!(
        value(
            &pages[leader],
            "strata_replica_manager_under_replicated_partitions"
        ),
        0.0
    );

    // Kill a follower that is not the quorum leader: the leader drops it from the ISR.
    let victim = (0..3)
        .find(|&i| {
            i != leader && value(&pages[i], "strata_controller_active_controller_count") == 0.0
        })
        .expect("a follower that is not the active controller");
    nodes[victim].0.kill();
    let leader_addr = [addrs[leader]];
    let shrunk = wait_for(&leader_addr, Duration::from_secs(15), "ISR shrink", |p| {
        value(&p[0], "strata_replica_manager_under_replicated_partitions") == 1.0
    });
    assert_eq!(
        value(&shrunk[0], "strata_replica_manager_at_min_isr_partitions"),
        1.0
    );
    assert_eq!(
        value(
            &shrunk[0],
            "strata_replica_manager_under_min_isr_partitions"
        ),
        0.0
    );
    assert!(value(&shrunk[0], "strata_replica_manager_isr_shrinks_total") >= 1.0);

    nodes[victim].0.restart();
    let expanded = wait_for(
        &leader_addr,
        Duration::from_secs(20),
        "ISR expansion",
        |p| value(&p[0], "strata_replica_manager_under_replicated_partitions") == 0.0,
    );
    assert!(value(&expanded[0], "strata_replica_manager_isr_expands_total") >= 1.0);
}

//! Consumer groups on a cluster: the group's coordinator is the leader of its
//! `__consumer_offsets` partition, and committed offsets survive that node's death because
//! a commit is acknowledged only once replicated.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::Cluster as Client;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use strata_tests::cluster::Cluster;
use strata_tests::run_bounded;

const GROUP: &str = "survivors";
const TOPIC: &str = "orders";
const COMMITTED: [(i32, i64); 3] = [(0, 10), (1, 20), (2, 5)];

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// The group's committed offsets as a new consumer on `bootstrap` reads them.
fn committed(bootstrap: &str) -> Option<Vec<(i32, i64)>> {
    let mut wanted = TopicPartitionList::new();
    for (p, _) in COMMITTED {
        wanted.add_partition(TOPIC, p);
    }
    let got = consumer(bootstrap)
        .committed_offsets(wanted, Duration::from_secs(5))
        .ok()?;
    Some(
        got.elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
            .collect(),
    )
}

#[test]
fn committed_offsets_survive_a_kill_9_of_the_coordinator() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(120), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        let mut admin = Client::connect(&bootstrap).await.expect("connect");
        admin
            .create_topic(TOPIC, 3, 3, &BTreeMap::new())
            .await
            .expect("create topic");

        let commit_to = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let mut offsets = TopicPartitionList::new();
            for (p, o) in COMMITTED {
                offsets
                    .add_partition_offset(TOPIC, p, Offset::Offset(o))
                    .expect("offset");
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let consumer = consumer(&commit_to);
            // The first commit creates `__consumer_offsets` and may race its leaders.
            while let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
                assert!(Instant::now() < deadline, "commit failed: {error}");
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .await
        .expect("commit");

        let coordinator = admin
            .coordinator(GROUP)
            .await
            .expect("find the coordinator")
            .addr()
            .to_owned();
        let node = cluster
            .nodes
            .iter()
            .position(|n| n.bootstrap() == coordinator)
            .expect("the coordinator is one of the nodes") as i32
            + 1;
        cluster.node(node).kill();

        // A new member of the group asks the surviving brokers.
        let survivors = cluster.bootstrap();
        let read = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = committed(&survivors);
                if got.as_deref() == Some(&COMMITTED[..]) || Instant::now() > deadline {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .await
        .expect("read");
        assert_eq!(
            read.as_deref(),
            Some(&COMMITTED[..]),
            "committed offsets after the coordinator (node {node}) died"
        );
    });
}

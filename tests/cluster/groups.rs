//! Consumer groups on a cluster: the group's coordinator is the leader of its
//! `__consumer_offsets` partition, and committed offsets survive that node's death because
//! a commit is acknowledged only once replicated. The group's membership survives it too:
//! the next coordinator loads it, so members go on without a rebalance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::Cluster as Client;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
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

/// The node (1-based) coordinating `group`.
async fn coordinator_node(cluster: &Cluster, admin: &mut Client, group: &str) -> i32 {
    let coordinator = admin
        .coordinator(group)
        .await
        .expect("find the coordinator")
        .addr()
        .to_owned();
    cluster
        .nodes
        .iter()
        .position(|n| n.bootstrap() == coordinator)
        .expect("the coordinator is one of the nodes") as i32
        + 1
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

        let node = coordinator_node(&cluster, &mut admin, GROUP).await;
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

/// Counts the assignments a member is handed (each one a completed rebalance).
#[derive(Default)]
struct Assignments(Arc<AtomicUsize>);

impl ClientContext for Assignments {}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Polls `member` (its heartbeats and rebalances run) until `done`, for at most 30 s.
fn poll_until(
    member: Arc<BaseConsumer<Assignments>>,
    done: impl Fn(&BaseConsumer<Assignments>) -> bool + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&member) {
            assert!(Instant::now() < deadline, "the member never got there");
            let _ = member.poll(Duration::from_millis(100));
        }
    })
}

#[test]
fn a_member_keeps_its_generation_when_the_coordinator_is_killed() {
    const MEMBERS: &str = "steady";
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(120), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        let mut admin = Client::connect(&bootstrap).await.expect("connect");
        admin
            .create_topic(TOPIC, 3, 3, &BTreeMap::new())
            .await
            .expect("create topic");

        // One member joins and is assigned every partition.
        let assignments = Arc::new(AtomicUsize::new(0));
        let context = Assignments(Arc::clone(&assignments));
        let member: BaseConsumer<Assignments> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", MEMBERS)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "500")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create_with_context(context)
            .expect("consumer");
        member.subscribe(&[TOPIC]).expect("subscribe");
        let member = Arc::new(member);
        poll_until(Arc::clone(&member), |m| {
            m.assignment().is_ok_and(|a| a.count() == 3)
        })
        .await
        .expect("assigned");
        assert_eq!(assignments.load(Ordering::SeqCst), 1);

        let node = coordinator_node(&cluster, &mut admin, MEMBERS).await;
        cluster.node(node).kill();

        // The member finds the next coordinator and commits under its generation: Kafka's
        // coordinator loads the group's membership, so no rebalance happens.
        let committing = Arc::clone(&member);
        tokio::task::spawn_blocking(move || {
            let mut offsets = TopicPartitionList::new();
            for (p, o) in COMMITTED {
                offsets
                    .add_partition_offset(TOPIC, p, Offset::Offset(o))
                    .expect("offset");
            }
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let _ = committing.poll(Duration::from_millis(100));
                match committing.commit(&offsets, CommitMode::Sync) {
                    Ok(()) => return,
                    Err(error) => {
                        assert!(Instant::now() < deadline, "commit failed: {error}");
                        eprintln!("commit after the coordinator died: {error}");
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .await
        .expect("commit");
        // Heartbeats go on for a while with the next coordinator, without a rebalance.
        let settled = Instant::now() + Duration::from_secs(3);
        poll_until(Arc::clone(&member), move |_| Instant::now() > settled)
            .await
            .expect("polled");
        assert_eq!(
            assignments.load(Ordering::SeqCst),
            1,
            "the member was assigned again: the next coordinator did not know it"
        );
    });
}

//! Replica administration on a live cluster: moving a partition to other brokers
//! (`strata topic move`, AlterPartitionReassignments) and preferred leader election
//! (`strata topic elect-leaders`, ElectLeaders, and the automatic rebalance), and unclean
//! leader election.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::{decode_records, encode_batch, Cluster as Client, Compression, OwnedRecord};
use strata_tests::cluster::Cluster;
use strata_tests::run_bounded;
use strata_tests::tool::Strata;

/// Runs the `strata` command line; panics unless it succeeds within 60 s.
fn strata(args: &[&str]) -> String {
    Strata::default().limit(Duration::from_secs(60)).ok(args)
}

/// `(leader, replicas, isr)` of each partition of `topic`, from `address`.
async fn partitions(address: &str, topic: &str) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    let mut client = Client::connect(address).await.expect("connect");
    let topics = client
        .metadata(Some(&[topic]), false)
        .await
        .expect("metadata");
    let mut parts = topics
        .into_iter()
        .find(|t| t.name == topic)
        .expect("topic listed")
        .partitions;
    parts.sort_by_key(|p| p.partition);
    parts
        .into_iter()
        .map(|p| {
            let mut isr = p.isr;
            isr.sort_unstable();
            (p.leader, p.replicas, isr)
        })
        .collect()
}

/// Polls `partitions` until `done` holds; panics with the last state after `limit`.
async fn wait_until(
    address: &str,
    topic: &str,
    limit: Duration,
    done: impl Fn(&[(i32, Vec<i32>, Vec<i32>)]) -> bool,
) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    let deadline = Instant::now() + limit;
    loop {
        let state = partitions(address, topic).await;
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never reached the wanted state: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn batch(first: usize) -> bytes::Bytes {
    let records: Vec<OwnedRecord> = (first..first + 10)
        .map(|i| OwnedRecord {
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(format!("r{i}").into_bytes().into()),
            headers: Vec::new(),
        })
        .collect();
    encode_batch(&records, Compression::None).expect("encode")
}

/// Every record value of partition 0, read from its current leader.
async fn read_values(address: &str, topic: &str) -> Vec<String> {
    let mut client = Client::connect(address).await.expect("connect");
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        let (records, high_watermark) = client
            .fetch(topic, 0, offset, Duration::from_millis(100))
            .await
            .expect("fetch");
        for r in decode_records(&records).expect("decode") {
            values.push(String::from_utf8(r.value.unwrap_or_default().to_vec()).expect("utf-8"));
            offset = r.offset + 1;
        }
        if offset >= high_watermark {
            return values;
        }
    }
}

#[test]
fn a_moved_partition_keeps_every_record_and_leaves_its_old_broker() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(90), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let boot = cluster.node(1).bootstrap();
        let mut client = Client::connect(&boot).await.expect("connect");
        client
            .create_topic("moved", 1, 2, &BTreeMap::new())
            .await
            .expect("create");
        let state = wait_until(&boot, "moved", Duration::from_secs(10), |s| {
            s[0].2.len() == 2
        })
        .await;
        let old = state[0].1.clone();
        let newcomer = (1..=3).find(|n| !old.contains(n)).expect("a third broker");
        let (kept, dropped) = (old[0], old[1]);
        for i in 0..50 {
            client
                .produce("moved", 0, batch(i * 10))
                .await
                .expect("produce");
        }

        let target = format!("{newcomer},{kept}");
        let out = strata(&[
            "topic",
            "move",
            "-b",
            &boot,
            "moved",
            "--partition",
            "0",
            "--replicas",
            &target,
            "--wait",
            "30",
        ]);
        assert!(out.contains("done"), "{out}");
        let state = partitions(&boot, "moved").await;
        assert_eq!(state[0].1, vec![newcomer, kept], "replicas after the move");
        let mut want_isr = vec![newcomer, kept];
        want_isr.sort_unstable();
        assert_eq!(state[0].2, want_isr, "ISR after the move");
        assert!(
            strata(&["topic", "reassignments", "-b", &boot])
                .lines()
                .count()
                == 1
        );

        // The dropped broker deletes its replica.
        let gone = cluster.node(dropped).data_dir().join("moved-0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while gone.exists() {
            assert!(Instant::now() < deadline, "{gone:?} still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // More writes, then the newcomer alone must hold everything.
        let mut client = Client::connect(&boot).await.expect("connect");
        for i in 50..60 {
            client
                .produce("moved", 0, batch(i * 10))
                .await
                .expect("produce after the move");
        }
        cluster.node(kept).kill();
        let survivor = cluster.node(newcomer).bootstrap();
        wait_until(&survivor, "moved", Duration::from_secs(10), |s| {
            s[0].0 == newcomer
        })
        .await;
        let values = read_values(&survivor, "moved").await;
        let expected: Vec<String> = (0..600).map(|i| format!("r{i}")).collect();
        assert_eq!(
            values, expected,
            "the new replica holds every record in order"
        );
    });
}

/// Every partition has all three replicas in its ISR.
fn all_in_sync(s: &[(i32, Vec<i32>, Vec<i32>)]) -> bool {
    s.iter().all(|p| p.2.len() == 3)
}

/// Creates `topic` (3 partitions, RF 3), then kills node 1 until its leaderships moved and
/// starts it again; returns the bootstrap address used (node 2's).
async fn bounce_node_1(cluster: &mut Cluster, topic: &str) -> String {
    cluster.wait_for_brokers(Duration::from_secs(30)).await;
    let boot = cluster.node(2).bootstrap();
    let mut client = Client::connect(&boot).await.expect("connect");
    client
        .create_topic(topic, 3, 3, &BTreeMap::new())
        .await
        .expect("create");
    wait_until(&boot, topic, Duration::from_secs(10), all_in_sync).await;
    cluster.node(1).kill();
    wait_until(&boot, topic, Duration::from_secs(10), |s| {
        s.iter().all(|p| p.0 != 1 && p.0 > 0)
    })
    .await;
    cluster.node(1).restart();
    boot
}

#[test]
fn leadership_returns_to_preferred_replicas_on_request_and_automatically() {
    let mut cluster = Cluster::start(3, 0, &[("auto.leader.rebalance.enable", "false")]);
    run_bounded(Duration::from_secs(90), async move {
        let boot = bounce_node_1(&mut cluster, "elected").await;
        let state = wait_until(&boot, "elected", Duration::from_secs(20), all_in_sync).await;
        assert!(
            state.iter().any(|p| p.0 != p.1[0]),
            "some partition should be led by a non-preferred replica: {state:?}"
        );
        let out = strata(&["topic", "elect-leaders", "-b", &boot, "elected"]);
        assert!(out.contains("moved to their preferred leader"), "{out}");
        wait_until(&boot, "elected", Duration::from_secs(10), |s| {
            s.iter().all(|p| p.0 == p.1[0])
        })
        .await;
    });

    // The same without asking: the automatic rebalance.
    let mut cluster = Cluster::start(3, 0, &[("leader.imbalance.check.interval.seconds", "1")]);
    run_bounded(Duration::from_secs(90), async move {
        let boot = bounce_node_1(&mut cluster, "rebalanced").await;
        wait_until(&boot, "rebalanced", Duration::from_secs(20), |s| {
            s.iter().all(|p| p.0 == p.1[0] && p.2.len() == 3)
        })
        .await;
    });
}

#[test]
fn only_an_unclean_election_gives_a_partition_a_leader_outside_the_isr() {
    let mut cluster = Cluster::start(3, 0, &[("replica.lag.time.max.ms", "1000")]);
    run_bounded(Duration::from_secs(90), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let boot = cluster.node(3).bootstrap();
        let mut client = Client::connect(&boot).await.expect("connect");
        // Two topics placed alike: one refuses unclean elections (the default), one allows them.
        let unclean = BTreeMap::from([(
            "unclean.leader.election.enable".to_owned(),
            "true".to_owned(),
        )]);
        client
            .create_topic("clean", 1, 2, &BTreeMap::new())
            .await
            .expect("create");
        client
            .create_topic("unclean", 1, 2, &unclean)
            .await
            .expect("create");
        let both = |s: &[(i32, Vec<i32>, Vec<i32>)]| s[0].2.len() == 2;
        let clean = wait_until(&boot, "clean", Duration::from_secs(10), both).await;
        wait_until(&boot, "unclean", Duration::from_secs(10), both).await;
        let replicas = clean[0].1.clone();
        let moved = strata(&[
            "topic",
            "move",
            "-b",
            &boot,
            "unclean",
            "--partition",
            "0",
            "--replicas",
            &format!("{},{}", replicas[0], replicas[1]),
            "--wait",
            "20",
        ]);
        assert!(moved.contains("done"), "{moved}");
        // The second replica dies; the first carries on alone and becomes the whole ISR.
        let (first, second) = (replicas[0], replicas[1]);
        cluster.node(second).kill();
        let third = 6 - first - second;
        let boot = cluster.node(third).bootstrap();
        for topic in ["clean", "unclean"] {
            wait_until(&boot, topic, Duration::from_secs(10), |s| {
                s[0].2 == vec![first]
            })
            .await;
        }
        // Then the first dies too, and the second comes back: outside the ISR, it may lead
        // only where unclean elections are allowed.
        cluster.node(first).kill();
        cluster.node(second).restart();
        wait_until(&boot, "unclean", Duration::from_secs(15), |s| {
            s[0].0 == second
        })
        .await;
        let clean = partitions(&boot, "clean").await;
        assert_eq!(
            clean[0].0, -1,
            "a clean topic stays without a leader: {clean:?}"
        );
        assert_eq!(
            clean[0].2,
            vec![first],
            "its ISR keeps the last in-sync replica"
        );
    });
}

//! Replication under faults. Idempotent acks=all producers (librdkafka) write to a topic with
//! three replicas while nodes are killed, paused, restarted and rolled; afterwards everything
//! is read back and checked: no acknowledged record lost or moved to another offset, no
//! duplicate, and each producer's records in order within a partition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use strata_tests::cluster::Cluster;
use strata_tests::netns::Network;
use strata_tests::{replicas, run_bounded};

const TOPIC: &str = "checked";
const PARTITIONS: i32 = 3;
/// Short enough that a paused leader's followers are dropped from its ISR during a test.
const LAG_MS: &str = "2000";

/// One acknowledged record.
#[derive(Debug, Clone)]
struct Acked {
    partition: i32,
    offset: i64,
    value: String,
}

/// What the producers saw.
#[derive(Debug, Default)]
struct Outcome {
    acked: Vec<Acked>,
    /// Delivery errors (all retriable ones were retried by librdkafka first).
    failed: Vec<String>,
}

const PROPERTIES: &[(&str, &str)] = &[
    ("replica.lag.time.max.ms", LAG_MS),
    ("leader.imbalance.check.interval.seconds", "2"),
];

fn start_cluster() -> Cluster {
    Cluster::start(3, 0, PROPERTIES)
}

async fn create_checked_topic(cluster: &mut Cluster) {
    replicas::create_topic(cluster, TOPIC, PARTITIONS, Some("2")).await;
    wait_for_full_isr(cluster, Duration::from_secs(10)).await;
}

/// The leader of partition `partition`.
async fn leader_of(cluster: &mut Cluster, partition: i32) -> i32 {
    replicas::leader_of(cluster, TOPIC, partition).await
}

/// Waits until every running node reports a leader and all three replicas in the ISR for
/// every partition.
async fn wait_for_full_isr(cluster: &mut Cluster, limit: Duration) {
    replicas::wait_for_full_isr(cluster, &[TOPIC], PARTITIONS as usize, 3, limit).await;
}

/// Produces from two idempotent acks=all producers until `stop`, at a bounded pace and
/// count, then waits for every delivery report.
async fn produce_until(bootstrap: String, stop: Arc<AtomicBool>) -> Outcome {
    let mut handles = Vec::new();
    for producer_id in 0..2 {
        let bootstrap = bootstrap.clone();
        let stop = Arc::clone(&stop);
        handles.push(tokio::spawn(async move {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set("request.timeout.ms", "5000")
                .set("message.timeout.ms", "60000")
                .set("topic.metadata.refresh.interval.ms", "1000")
                .set("retry.backoff.ms", "100")
                .create()
                .expect("producer");
            let mut deliveries = Vec::new();
            for seq in 0..20_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let value = format!("{producer_id}-{seq:08}");
                let partition = (seq % PARTITIONS as u32) as i32;
                let record = FutureRecord::<(), _>::to(TOPIC)
                    .payload(&value)
                    .partition(partition);
                match producer.send_result(record) {
                    Ok(delivery) => deliveries.push((value, Ok(delivery))),
                    Err((error, _)) => {
                        // A fatal producer error (an idempotence violation): stop here.
                        deliveries.push((value, Err(error.to_string())));
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let mut outcome = Outcome::default();
            for (value, delivery) in deliveries {
                let delivery = match delivery {
                    Ok(delivery) => delivery,
                    Err(error) => {
                        outcome.failed.push(format!("{value}: not queued: {error}"));
                        continue;
                    }
                };
                match delivery.await {
                    Ok(Ok(delivered)) => outcome.acked.push(Acked {
                        partition: delivered.partition,
                        offset: delivered.offset,
                        value,
                    }),
                    Ok(Err((error, _))) => outcome.failed.push(format!("{value}: {error}")),
                    Err(_) => outcome.failed.push(format!("{value}: delivery canceled")),
                }
            }
            outcome
        }));
    }
    let mut all = Outcome::default();
    for handle in handles {
        let outcome = handle.await.expect("producer task");
        all.acked.extend(outcome.acked);
        all.failed.extend(outcome.failed);
    }
    all
}

/// Reads every partition from the start up to its high watermark, asking for the high
/// watermark again until the reading has reached it (a new leader's may still be rising):
/// `partition → [(offset, value)]`.
fn read_back(bootstrap: &str) -> HashMap<i32, Vec<(i64, String)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "checker")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let high_watermark = |p: i32| {
        // Leadership may still be settling (a preferred leader taking over): retry.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(5)) {
                Ok((_, high)) => return high,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("watermarks of {p}: {error}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => panic!("watermarks of {p}: {error}"),
            }
        }
    };
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records: HashMap<i32, Vec<(i64, String)>> = HashMap::new();
    let next = |records: &HashMap<i32, Vec<(i64, String)>>, p: i32| {
        records
            .get(&p)
            .and_then(|r| r.last())
            .map_or(0, |(o, _)| o + 1)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ends: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, high_watermark(p))).collect();
    loop {
        let behind: Vec<i32> = (0..PARTITIONS)
            .filter(|p| next(&records, *p) < ends[p])
            .collect();
        if behind.is_empty() {
            // Caught up with what was asked: done once the high watermarks stand still.
            let now: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, high_watermark(p))).collect();
            if now == ends {
                return records;
            }
            ends = now;
            continue;
        }
        assert!(Instant::now() < deadline, "reading back timed out");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            let value = String::from_utf8(message.payload().unwrap_or_default().to_vec())
                .expect("utf-8 value");
            records
                .entry(message.partition())
                .or_default()
                .push((message.offset(), value));
        }
    }
}

/// The checker: every acknowledged record at its offset with its value, no duplicates, each
/// producer's sequence increasing within a partition.
fn check(outcome: &Outcome, records: &HashMap<i32, Vec<(i64, String)>>) {
    let at: HashMap<(i32, i64), &str> = records
        .iter()
        .flat_map(|(p, rs)| rs.iter().map(move |(o, v)| ((*p, *o), v.as_str())))
        .collect();
    let lost: Vec<&Acked> = outcome
        .acked
        .iter()
        .filter(|a| at.get(&(a.partition, a.offset)) != Some(&a.value.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost or moved, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let mut seen: HashMap<&str, (i32, i64)> = HashMap::new();
    for (p, rs) in records {
        let mut last_seq: HashMap<&str, &str> = HashMap::new();
        for (offset, value) in rs {
            if let Some((first_p, first_offset)) = seen.insert(value.as_str(), (*p, *offset)) {
                panic!(
                    "duplicate {value} at {p}/{offset}, first at {first_p}/{first_offset} \
                     (delivery errors: {:?})",
                    &outcome.failed[..outcome.failed.len().min(5)]
                );
            }
            let (producer, seq) = value.split_once('-').expect("producer-seq");
            if let Some(previous) = last_seq.insert(producer, seq) {
                assert!(
                    previous < seq,
                    "reordered in partition {p}: {producer}-{seq} after {producer}-{previous}"
                );
            }
        }
        for pair in rs.windows(2) {
            assert!(pair[0].0 < pair[1].0, "offsets not increasing in {p}");
        }
    }
}

/// Runs the producers while `faults` acts on the cluster, then checks the topic. Returns
/// the outcome for scenario-specific checks.
async fn checked_run<F>(cluster: &mut Cluster, faults: F) -> Outcome
where
    F: for<'a> FnOnce(
        &'a mut Cluster,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
{
    create_checked_topic(cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(produce_until(cluster.bootstrap(), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    faults(cluster).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let outcome = load.await.expect("load");
    wait_for_full_isr(cluster, Duration::from_secs(30)).await;
    let bootstrap = cluster.bootstrap();
    let records = tokio::task::spawn_blocking(move || read_back(&bootstrap))
        .await
        .expect("read back");
    check(&outcome, &records);
    let fatal: Vec<&String> = outcome
        .failed
        .iter()
        .filter(|f| f.contains("not queued"))
        .collect();
    assert!(
        fatal.is_empty(),
        "the idempotent producer failed fatally: {fatal:?}"
    );
    assert!(
        outcome.acked.len() >= 500,
        "too few records acknowledged to prove anything: {} (failed: {:?})",
        outcome.acked.len(),
        &outcome.failed[..outcome.failed.len().min(5)]
    );
    outcome
}

#[test]
fn kill_9_of_the_leader_loses_no_acknowledged_record() {
    let mut cluster = start_cluster();
    run_bounded(Duration::from_secs(150), async move {
        checked_run(&mut cluster, |cluster| {
            Box::pin(async move {
                for _ in 0..2 {
                    let leader = leader_of(cluster, 0).await;
                    cluster.node(leader).kill();
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    cluster.node(leader).restart();
                    wait_for_full_isr(cluster, Duration::from_secs(20)).await;
                }
            })
        })
        .await;
    });
}

#[test]
fn kill_9_of_a_leader_ahead_of_its_followers_loses_no_acknowledged_record() {
    let mut cluster = start_cluster();
    run_bounded(Duration::from_secs(150), async move {
        checked_run(&mut cluster, |cluster| {
            Box::pin(async move {
                for _ in 0..2 {
                    // The followers stall (within the lag time, so they stay in the ISR)
                    // while the leader takes writes; then the leader dies.
                    let leader = leader_of(cluster, 0).await;
                    let followers: Vec<i32> = (1..=3).filter(|&n| n != leader).collect();
                    for &f in &followers {
                        cluster.node(f).pause();
                    }
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    cluster.node(leader).kill();
                    for &f in &followers {
                        cluster.node(f).resume();
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    cluster.node(leader).restart();
                    wait_for_full_isr(cluster, Duration::from_secs(20)).await;
                }
            })
        })
        .await;
    });
}

#[test]
fn a_leader_paused_past_the_lag_time_loses_no_acknowledged_record() {
    let mut cluster = start_cluster();
    run_bounded(Duration::from_secs(150), async move {
        checked_run(&mut cluster, |cluster| {
            Box::pin(async move {
                for _ in 0..2 {
                    let leader = leader_of(cluster, 1).await;
                    cluster.node(leader).pause();
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    cluster.node(leader).resume();
                    wait_for_full_isr(cluster, Duration::from_secs(20)).await;
                }
            })
        })
        .await;
    });
}

#[test]
fn a_follower_killed_and_restarted_catches_up_and_rejoins_the_isr() {
    let mut cluster = start_cluster();
    run_bounded(Duration::from_secs(150), async move {
        checked_run(&mut cluster, |cluster| {
            Box::pin(async move {
                let leader = leader_of(cluster, 2).await;
                let follower = (1..=3).find(|&n| n != leader).expect("a follower");
                cluster.node(follower).kill();
                // The others move on without it, past the lag time.
                tokio::time::sleep(Duration::from_secs(4)).await;
                let state = replicas::partition_state(cluster, TOPIC)
                    .await
                    .expect("metadata");
                assert!(
                    state.iter().all(|(_, isr)| !isr.contains(&follower)),
                    "a dead follower stays in the ISR: {state:?}"
                );
                cluster.node(follower).restart();
                wait_for_full_isr(cluster, Duration::from_secs(20)).await;
            })
        })
        .await;
    });
}

#[test]
fn a_rolling_restart_gives_acks_all_producers_no_errors() {
    let mut cluster = start_cluster();
    run_bounded(Duration::from_secs(180), async move {
        let outcome = checked_run(&mut cluster, |cluster| {
            Box::pin(async move {
                for node in 1..=3 {
                    cluster.node(node).stop();
                    cluster.node(node).restart();
                    wait_for_full_isr(cluster, Duration::from_secs(20)).await;
                }
            })
        })
        .await;
        assert!(
            outcome.failed.is_empty(),
            "{} records failed in a rolling restart, e.g. {:?}",
            outcome.failed.len(),
            &outcome.failed[..outcome.failed.len().min(5)]
        );
    });
}

#[test]
fn a_leader_cut_off_the_network_loses_no_acknowledged_record() {
    let Some(net) = Network::create(3) else {
        eprintln!("SKIPPED: network namespaces need iproute2 and CAP_NET_ADMIN");
        return;
    };
    // The network outlives the nodes: it is dropped (and torn down) after them.
    let net = Arc::new(net);
    let mut cluster = Cluster::start_in(&net, 3, PROPERTIES);
    let faults = Arc::clone(&net);
    run_bounded(Duration::from_secs(180), async move {
        checked_run(&mut cluster, move |cluster| {
            let net = faults;
            Box::pin(async move {
                for _ in 0..2 {
                    // The leader keeps running but hears nothing and reaches no one: it is
                    // fenced, its followers elect a new leader, and when it is back it
                    // must drop whatever it took in alone.
                    let leader = leader_of(cluster, 0).await;
                    net.cut(leader as usize);
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    net.heal(leader as usize);
                    wait_for_full_isr(cluster, Duration::from_secs(30)).await;
                }
            })
        })
        .await;
    });
}

//! Transactions on a three-node cluster: the coordinator and the partition leaders are on
//! different nodes (markers go through WriteTxnMarkers, writes are verified with the
//! coordinator over the network), and a node killed with -9 loses no committed record and
//! lets no aborted one through.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::cluster::Cluster;
use strata_tests::{replicas, run_bounded};

use crate::ctp;

const TIMEOUT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 6;

fn transactional(bootstrap: &str, id: &str) -> FutureProducer {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    p.init_transactions(TIMEOUT).expect("init_transactions");
    p
}

/// One transaction of `count` records spread over every partition, committed or aborted;
/// the error that stopped it, as librdkafka reports it.
async fn try_transaction(
    p: &FutureProducer,
    prefix: &str,
    count: usize,
    commit: bool,
) -> Result<Vec<String>, KafkaError> {
    p.begin_transaction()?;
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let value = format!("{prefix}-{i}");
        p.send(
            FutureRecord::to("txc")
                .key(&value)
                .payload(&value)
                .partition(i as i32 % PARTITIONS),
            TIMEOUT,
        )
        .await
        .map_err(|(e, _)| e)?;
        sent.push(value);
    }
    if commit {
        p.commit_transaction(TIMEOUT)?;
    } else {
        p.abort_transaction(TIMEOUT)?;
    }
    Ok(sent)
}

/// [`try_transaction`] as an application runs it: a transaction that fails (a leader or the
/// coordinator moved under it) is aborted and run again; a fenced or fatal producer is
/// replaced. What the last attempt sent.
async fn transaction(
    p: &mut FutureProducer,
    bootstrap: &str,
    prefix: &str,
    count: usize,
    commit: bool,
) -> Vec<String> {
    let mut last = None;
    for _ in 0..8 {
        match try_transaction(p, prefix, count, commit).await {
            Ok(sent) => return sent,
            Err(error) => {
                let fatal = matches!(&error, KafkaError::Transaction(e) if e.is_fatal());
                if fatal || p.abort_transaction(TIMEOUT).is_err() {
                    *p = transactional(bootstrap, "cluster-app");
                }
                last = Some(error);
            }
        }
    }
    panic!("transaction {prefix} failed every time: {last:?}");
}

/// What a read_committed consumer reads of the whole topic: stops once it has `expected`
/// and then a short quiet period, or at `limit`.
fn read_committed(bootstrap: &str, expected: usize, limit: Duration) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txc-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("txc", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut quiet_until = None;
    while Instant::now() < deadline {
        if got.len() >= expected && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
        if quiet_until.is_some_and(|q| Instant::now() > q) {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    got.sort();
    got
}

#[test]
fn transactions_across_nodes_survive_a_node_killed_mid_run() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(150), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        let mut client = client::Cluster::connect(&bootstrap).await.expect("connect");
        client
            .create_topic("txc", PARTITIONS, 3, &BTreeMap::new())
            .await
            .expect("create");
        let mut p = transactional(&bootstrap, "cluster-app");
        let mut committed = Vec::new();
        for round in 0..4 {
            committed.extend(transaction(&mut p, &bootstrap, &format!("c{round}"), 12, true).await);
            transaction(&mut p, &bootstrap, &format!("a{round}"), 12, false).await;
        }
        committed.sort();
        assert_eq!(
            read_committed(&bootstrap, committed.len(), TIMEOUT),
            committed
        );

        // A node dies outright (whatever it coordinated or led moves); transactions go on.
        cluster.node(2).kill();
        let survivors = format!(
            "{},{}",
            cluster.node(1).bootstrap(),
            cluster.node(3).bootstrap()
        );
        for round in 4..7 {
            committed.extend(transaction(&mut p, &survivors, &format!("c{round}"), 12, true).await);
            transaction(&mut p, &survivors, &format!("a{round}"), 6, false).await;
        }
        committed.sort();
        let read = read_committed(&survivors, committed.len(), Duration::from_secs(40));
        assert_eq!(
            read.len(),
            committed.len(),
            "committed records lost or duplicated"
        );
        assert_eq!(read, committed);
    });
}

/// The leader epoch of the `__transaction_state` partition coordinating `id`, and its
/// leader.
async fn coordinator_epoch(client: &mut client::Cluster, id: &str) -> (i32, i32) {
    let state = client
        .metadata(Some(&["__transaction_state"]), false)
        .await
        .expect("metadata");
    let partitions = &state[0].partitions;
    let index = coordinator::group::records::partition_for(id, partitions.len() as i32);
    let p = &partitions[index as usize];
    (p.leader_epoch, p.leader)
}

/// Waits until a producer of `txc`-0 shows coordinator epoch `epoch` from its last marker.
async fn marked_with(client: &mut client::Cluster, epoch: i32) -> client::ProducerState {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let producers = client.describe_producers("txc", 0, None).await;
        if let Some(p) = producers
            .iter()
            .flatten()
            .find(|p| p.coordinator_epoch == epoch)
        {
            return *p;
        }
        assert!(
            Instant::now() < deadline,
            "no marker of coordinator epoch {epoch}: {producers:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Markers carry the leader epoch of the coordinator's `__transaction_state` partition: once
/// the coordinator's node dies and another takes the partition over (a newer epoch), its
/// markers carry the new epoch, and partition leaders refuse markers of the old one
/// (TRANSACTION_COORDINATOR_FENCED), as a zombie coordinator would send them.
#[test]
fn markers_of_a_moved_coordinator_carry_its_new_epoch_and_fence_the_old_one() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(150), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        let mut client = client::Cluster::connect(&bootstrap).await.expect("connect");
        client
            .create_topic("txc", PARTITIONS, 3, &BTreeMap::new())
            .await
            .expect("create");
        let mut p = transactional(&bootstrap, "cluster-app");
        let mut committed = transaction(&mut p, &bootstrap, "before", 12, true).await;
        let (old_epoch, old_coordinator) = coordinator_epoch(&mut client, "cluster-app").await;
        marked_with(&mut client, old_epoch).await;

        cluster.node(old_coordinator).kill();
        let survivors: Vec<String> = [1, 2, 3]
            .into_iter()
            .filter(|n| *n != old_coordinator)
            .map(|n| cluster.node(n).bootstrap())
            .collect();
        let survivors = survivors.join(",");
        let mut client = client::Cluster::connect(&survivors).await.expect("connect");
        committed.extend(transaction(&mut p, &survivors, "after", 12, true).await);
        let (new_epoch, new_coordinator) = coordinator_epoch(&mut client, "cluster-app").await;
        assert_ne!(new_coordinator, old_coordinator);
        assert!(new_epoch > old_epoch, "{new_epoch} after {old_epoch}");
        let producer = marked_with(&mut client, new_epoch).await;

        let stale = client
            .abort_transaction(
                "txc",
                0,
                producer.producer_id,
                i16::try_from(producer.producer_epoch).expect("epoch"),
                old_epoch,
            )
            .await;
        assert!(
            matches!(stale, Err(client::ClientError::Kafka { code: 52, .. })),
            "{stale:?}"
        );
        committed.sort();
        assert_eq!(
            read_committed(&survivors, committed.len(), Duration::from_secs(40)),
            committed
        );
    });
}

/// Inputs of each consume-transform-produce run under kill -9.
const CTP_INPUTS: usize = 3_000;

/// Kills `node` with -9 (the moment `when` says), waits until the worker has committed a
/// transaction without it, restarts it and waits until every replica is back in sync.
async fn kill_and_restart(cluster: &mut Cluster, run: &ctp::Run, node: i32, when: When) {
    let coordinator = ctp::transaction_coordinator(cluster).await;
    let what = match when {
        When::Producing => {
            run.progress
                .wait_for_phase(ctp::Phase::Producing, Duration::from_secs(10))
                .await;
            cluster.node(node).kill();
            "a transaction open".to_owned()
        }
        When::PrepareCommit => {
            let caught = ctp::kill_in_prepare_commit(
                cluster,
                &run.progress,
                coordinator,
                node,
                Duration::from_secs(20),
            )
            .await;
            assert!(caught, "the coordinator was never seen in PrepareCommit");
            "a transaction in PrepareCommit".to_owned()
        }
    };
    let at = run.progress.done();
    eprintln!("killed node {node} (coordinator: {coordinator}) with {what}, {at} inputs done");
    // Long enough for the worker to replace a producer wedged by the kill (ctp::WEDGED).
    run.progress.wait_for(at + 1, Duration::from_secs(45)).await;
    eprintln!("node {node} down, {} inputs done", run.progress.done());
    cluster.node(node).restart();
    ctp::wait_for_full_isr(cluster, Duration::from_secs(30)).await;
}

/// When a node is killed.
#[derive(Debug, Clone, Copy)]
enum When {
    /// While the worker's transaction is open and outputs are being sent.
    Producing,
    /// While the coordinator has the transaction in PrepareCommit (its markers are being
    /// written).
    PrepareCommit,
}

/// Picks the node to kill, given the transaction coordinator's id.
type Victim = for<'a> fn(&'a mut Cluster, i32) -> Pin<Box<dyn Future<Output = i32> + 'a>>;

/// Runs consume-transform-produce over [`CTP_INPUTS`] inputs on a new three-node cluster,
/// killing with -9 the node `victim` picks at a quarter and again at half of the inputs, at
/// the moments `kills` names (restarting it each time); then checks that every input came
/// out exactly once. Fails after 150 s. The cluster, for its logs.
fn exactly_once_through_kills(kills: [When; 2], victim: Victim) -> Cluster {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(150), async {
        let cluster = &mut cluster;
        let run = ctp::Run::start(cluster, CTP_INPUTS, Duration::from_secs(130)).await;
        let quarter = CTP_INPUTS as i64 / 4;
        for (kill, when) in (1..).zip(kills) {
            run.progress
                .wait_for(kill * quarter, Duration::from_secs(30))
                .await;
            let coordinator = ctp::transaction_coordinator(cluster).await;
            let node = victim(cluster, coordinator).await;
            kill_and_restart(cluster, &run, node, when).await;
        }
        run.finish().await;
    });
    cluster
}

/// The leader of an output partition that is not `coordinator`.
async fn output_leader_apart_from(cluster: &mut Cluster, coordinator: i32) -> i32 {
    for p in 0..ctp::PARTITIONS {
        let leader = replicas::leader_of(cluster, ctp::OUTPUT, p).await;
        if leader != coordinator {
            return leader;
        }
    }
    panic!("no output leader apart from the coordinator");
}

#[test]
fn consume_transform_produce_is_exactly_once_when_the_transaction_coordinator_is_killed() {
    // Mid-run the coordinator dies, first with a commit decided but not complete (the new
    // one, the next leader of the id's `__transaction_state` partition, must finish it), then
    // with a transaction open.
    let cluster =
        exactly_once_through_kills([When::PrepareCommit, When::Producing], |_, coordinator| {
            Box::pin(async move { coordinator })
        });
    let resumed: usize = cluster
        .nodes
        .iter()
        .map(|n| n.log().matches("finishing a prepared transaction").count())
        .sum();
    eprintln!("prepared transactions a coordinator resumed: {resumed}");
}

#[test]
fn consume_transform_produce_is_exactly_once_when_a_partition_leader_is_killed() {
    // The leader of an output partition (not the coordinator) dies while outputs go to it,
    // then (another time) while its markers are being written: they go to the new leader.
    exactly_once_through_kills(
        [When::Producing, When::PrepareCommit],
        |cluster, coordinator| Box::pin(output_leader_apart_from(cluster, coordinator)),
    );
}

/// Kafka's Java client 4.4.0 with transaction version 2 on three nodes: partition leaders
/// add partitions to transactions coordinated elsewhere (AddPartitionsToTxn v5), the
/// group's offsets partition joins through TxnOffsetCommit v5, markers carry the bumped
/// epoch to other nodes, and a zombie is fenced.
#[test]
fn java_transactions_v2_across_nodes() {
    let mut cluster = Cluster::start(3, 0, &[]);
    let b = cluster.bootstrap();
    for scenario in ["upgrade", "commit-abort", "zombie", "offsets"] {
        strata_tests::java::transactions_v2(&b, scenario);
    }
}

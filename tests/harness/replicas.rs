//! Replicated topics in a [`Cluster`]: creating them, waiting for their ISRs, finding their
//! leaders and producing to them with a chosen `acks`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::{encode_batch, Cluster as Client, Compression, OwnedRecord, TopicInfo};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Cluster;

/// How long one node may take to answer before it counts as not answering (a paused node
/// never does).
const ANSWER: Duration = Duration::from_secs(2);
/// The pause between two looks at the metadata.
const POLL: Duration = Duration::from_millis(100);

/// Waits until every node is registered, then creates `topic` with `partitions` partitions
/// of three replicas and `min.insync.replicas` set to `min_insync` (the broker's default
/// when `None`); a client connected to the running nodes.
pub async fn create_topic(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
    min_insync: Option<&str>,
) -> Client {
    cluster.wait_for_brokers(Duration::from_secs(30)).await;
    let mut client = Client::connect(&cluster.bootstrap())
        .await
        .expect("connect");
    let configs: BTreeMap<String, String> = min_insync
        .map(|m| ("min.insync.replicas".to_owned(), m.to_owned()))
        .into_iter()
        .collect();
    client
        .create_topic(topic, partitions, 3, &configs)
        .await
        .expect("create topic");
    client
}

/// `topics` as the node at `address` describes them, `None` when it does not answer.
async fn describe(address: &str, topics: &[&str]) -> Option<Vec<TopicInfo>> {
    tokio::time::timeout(ANSWER, async {
        let mut client = Client::connect(address).await.ok()?;
        client.metadata(Some(topics), false).await.ok()
    })
    .await
    .ok()
    .flatten()
}

/// Waits until every running node answers Metadata for each of `topics` with `partitions`
/// partitions, each with a leader and `replicas` replicas in its ISR (a node just
/// reconnected may still answer from stale metadata). Panics after `limit`.
pub async fn wait_for_full_isr(
    cluster: &mut Cluster,
    topics: &[&str],
    partitions: usize,
    replicas: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let full = |described: &[TopicInfo]| {
        described.len() == topics.len()
            && described.iter().all(|t| {
                t.partitions.len() == partitions
                    && t.partitions
                        .iter()
                        .all(|p| p.leader > 0 && p.isr.len() == replicas)
            })
    };
    loop {
        let mut lagging = None;
        for address in cluster.bootstrap().split(',') {
            let described = describe(address, topics).await;
            if !described.as_deref().is_some_and(full) {
                lagging = Some(format!("{address}: {described:?}"));
                break;
            }
        }
        let Some(lagging) = lagging else {
            return;
        };
        assert!(
            Instant::now() < deadline,
            "replicas not in sync within {limit:?}: {lagging}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `(leader, isr)` of each partition of `topic`, in partition order, as the first running
/// node that answers reports them.
pub async fn partition_state(cluster: &mut Cluster, topic: &str) -> Option<Vec<(i32, Vec<i32>)>> {
    for address in cluster.bootstrap().split(',') {
        let Some(described) = describe(address, &[topic]).await else {
            continue;
        };
        let Some(found) = described.into_iter().find(|t| t.name == topic) else {
            continue;
        };
        let mut partitions = found.partitions;
        partitions.sort_by_key(|p| p.partition);
        return Some(partitions.into_iter().map(|p| (p.leader, p.isr)).collect());
    }
    None
}

/// The leader of `partition` of `topic` as the first running node that answers names it.
/// Panics when none does within 20 seconds.
pub async fn leader_of(cluster: &mut Cluster, topic: &str, partition: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = partition_state(cluster, topic).await;
        let leader = state.and_then(|s| s.get(partition as usize).map(|p| p.0));
        if let Some(leader) = leader.filter(|l| *l > 0) {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-{partition} has no leader"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until partition 0 of `topic` has an ISR of `size` as `client` reports it. Panics
/// after `limit`.
pub async fn wait_for_isr(client: &mut Client, topic: &str, size: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let topics = client
            .metadata(Some(&[topic]), false)
            .await
            .expect("metadata");
        let isr = &topics[0].partitions[0].isr;
        if isr.len() == size {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ISR of {topic} is {isr:?}, not {size} replicas"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Produces one record of `value` with `acks` to partition 0 of `topic` on its leader (a
/// Produce v9 request with a 10 s timeout); the partition's error code.
pub async fn produce(client: &mut Client, topic: &str, acks: i16, value: &str) -> i16 {
    let record = OwnedRecord {
        offset: 0,
        timestamp: 0,
        key: None,
        value: Some(value.as_bytes().to_vec().into()),
        headers: Vec::new(),
    };
    let batch = encode_batch(&[record], Compression::None).expect("encode");
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let topics = client
        .metadata(Some(&[topic]), false)
        .await
        .expect("metadata");
    let leader = topics[0].partitions[0].leader;
    let connection = client.broker(leader).await.expect("leader connection");
    let response = connection.send(request, 9).await.expect("produce");
    response.responses[0].partition_responses[0].error_code
}

//! One follower fetcher: pulls every partition this node follows from one leader broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use client::Connection;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use super::{FetcherConfig, FollowedSet};
use crate::partition::Partition;

/// Fetch v12: topics by name, `replica_id` in the body, `last_fetched_epoch` present.
const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch v3: the first with `replica_id`.
const EPOCH_VERSION: i16 = 3;
/// How long a leader may take to answer beyond the fetch's own wait before the connection
/// is given up as dead (a leader cut off the network sends no reset).
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// Runs until aborted: connects to `leader` at `addr`, settles divergent tails, then
/// fetches in a loop; any failure drops the connection and retries after the backoff.
pub(super) async fn run(
    config: FetcherConfig,
    leader: i32,
    addr: String,
    mut partitions: watch::Receiver<FollowedSet>,
) {
    tracing::debug!(leader, %addr, "replica fetcher started");
    let mut connection: Option<Connection> = None;
    // A refused login is logged once, until a login succeeds again.
    let mut refused = false;
    loop {
        let followed = partitions.borrow_and_update().clone();
        if followed.is_empty() {
            if partitions.changed().await.is_err() {
                return;
            }
            continue;
        }
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match config.connector.connect(&addr).await {
                Ok(conn) => {
                    if std::mem::take(&mut refused) {
                        tracing::info!(leader, %addr, "replica fetcher authenticated again");
                    }
                    connection.insert(conn)
                }
                Err(error) => {
                    if crate::inter_broker::authentication_failed(&error) && !refused {
                        refused = true;
                        tracing::error!(
                            leader,
                            %addr,
                            %error,
                            "inter-broker authentication failed: the leader refused this \
                             broker's SASL credentials (sasl.mechanism.inter.broker.protocol \
                             and the username and password of the inter-broker listener's \
                             JAAS line); this broker fetches nothing from it and stays out \
                             of its partitions' ISR until they are accepted"
                        );
                    } else {
                        tracing::debug!(leader, %addr, %error, "replica fetcher cannot connect");
                    }
                    tokio::time::sleep(config.backoff).await;
                    continue;
                }
            },
        };
        match fetch_round(&config, conn, &followed).await {
            Ok(Round::Progress) => {}
            Ok(Round::MetadataRace) => tokio::time::sleep(METADATA_RACE_RETRY).await,
            Ok(Round::Backoff) => tokio::time::sleep(config.backoff).await,
            Err(error) => {
                tracing::debug!(leader, %addr, %error, "replica fetch failed; reconnecting");
                connection = None;
                tokio::time::sleep(config.backoff).await;
            }
        }
    }
}

enum Round {
    Progress,
    /// Some partition is ahead of or behind the leader's view of the metadata (a leader
    /// change seen by one side first): retry shortly.
    MetadataRace,
    /// Some partition answered with an error worth waiting out.
    Backoff,
}

/// How long to wait before retrying a partition whose leader and follower disagree about
/// the leader epoch; the metadata log reaches both within milliseconds.
const METADATA_RACE_RETRY: Duration = Duration::from_millis(20);

async fn fetch_round(
    config: &FetcherConfig,
    conn: &mut Connection,
    followed: &[Arc<Partition>],
) -> Result<Round, client::ClientError> {
    let truncating: Vec<&Arc<Partition>> =
        followed.iter().filter(|p| p.needs_truncation()).collect();
    if !truncating.is_empty() {
        truncate_divergent(config, conn, &truncating).await?;
    }
    // Partitions still waiting for truncation are left out until it succeeds.
    let ready: Vec<(&Arc<Partition>, i32)> = followed
        .iter()
        .filter(|p| !p.needs_truncation())
        .map(|p| (p, p.leader_epoch()))
        .collect();
    if ready.is_empty() {
        return Ok(Round::MetadataRace);
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(config.node_id))
        .with_max_wait_ms(config.max_wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(config.response_max_bytes)
        .with_session_epoch(-1)
        .with_topics(
            ready
                .iter()
                .map(|(p, epoch)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                        .with_partitions(vec![FetchPartition::default()
                            .with_partition(p.index)
                            .with_current_leader_epoch(*epoch)
                            .with_fetch_offset(p.log.log_end_offset())
                            .with_last_fetched_epoch(p.log.latest_epoch().unwrap_or(-1))
                            .with_log_start_offset(p.log.log_start_offset())
                            .with_partition_max_bytes(config.partition_max_bytes)])
                })
                .collect(),
        );
    let response = conn
        .send_within(request, FETCH_VERSION, config.max_wait + ANSWER_MARGIN)
        .await?;
    let by_name: HashMap<(&str, i32), (&Arc<Partition>, i32)> = ready
        .iter()
        .map(|&(p, epoch)| ((p.topic.as_str(), p.index), (p, epoch)))
        .collect();
    let mut round = Round::Progress;
    let mut fetched = Vec::new();
    let answers = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.0.as_str(), p)));
    for (topic, data) in answers {
        let Some(&(partition, epoch)) = by_name.get(&(topic, data.partition_index)) else {
            continue;
        };
        match ResponseError::try_from_code(data.error_code) {
            None => {
                let records = data.records.clone().unwrap_or_default();
                let leader_offsets = (data.high_watermark, data.log_start_offset);
                fetched.push((Arc::clone(partition), records, epoch, leader_offsets));
            }
            Some(ResponseError::OffsetOutOfRange) => {
                tracing::warn!(
                    topic,
                    partition = partition.index,
                    offset = partition.log.log_end_offset(),
                    "follower offset out of range at the leader; checking epochs again"
                );
                partition.mark_for_truncation();
                if matches!(round, Round::Progress) {
                    round = Round::MetadataRace;
                }
            }
            Some(error) => {
                tracing::debug!(
                    topic,
                    partition = partition.index,
                    ?error,
                    "replica fetch refused"
                );
                round = Round::Backoff;
            }
        }
    }
    drop(response);
    // Appends write and may roll or sync: off the runtime's workers.
    let appended = tokio::task::spawn_blocking(move || {
        for (partition, records, epoch, leader_offsets) in fetched {
            if let Err(error) = partition.append_as_follower(&records, epoch, leader_offsets) {
                tracing::debug!(topic = %partition.topic, partition = partition.index, %error, "fetched records not appended");
            }
        }
    });
    if let Err(error) = appended.await {
        tracing::error!(%error, "appending fetched records failed");
    }
    Ok(round)
}

/// Asks the leader where each partition's latest local epoch ends and cuts the log there
/// (Kafka's truncation by leader epoch); a log without epochs is kept as it is.
async fn truncate_divergent(
    config: &FetcherConfig,
    conn: &mut Connection,
    partitions: &[&Arc<Partition>],
) -> Result<(), client::ClientError> {
    let mut asked = Vec::new();
    // (partition, where to cut, its leader epoch); a log without epochs is cut nowhere.
    let mut cuts = Vec::new();
    for &p in partitions {
        let epoch = p.leader_epoch();
        match p.log.latest_epoch() {
            Some(latest) => asked.push((p, epoch, latest)),
            None => cuts.push((Arc::clone(p), p.log.log_end_offset(), epoch)),
        }
    }
    if asked.is_empty() {
        return truncate(cuts).await;
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(config.node_id))
        .with_topics(
            asked
                .iter()
                .map(|(p, epoch, latest)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                        .with_partitions(vec![OffsetForLeaderPartition::default()
                            .with_partition(p.index)
                            .with_current_leader_epoch(*epoch)
                            .with_leader_epoch(*latest)])
                })
                .collect(),
        );
    let response = conn
        .send_within(request, EPOCH_VERSION, ANSWER_MARGIN)
        .await?;
    let by_name: HashMap<(&str, i32), (&Arc<Partition>, i32)> = asked
        .iter()
        .map(|&(p, epoch, _)| ((p.topic.as_str(), p.index), (p, epoch)))
        .collect();
    for topic in &response.topics {
        for answer in &topic.partitions {
            let Some(&(p, epoch)) = by_name.get(&(topic.topic.0.as_str(), answer.partition)) else {
                continue;
            };
            if answer.error_code != 0 {
                tracing::debug!(topic = %p.topic, partition = p.index, code = answer.error_code, "leader epoch lookup refused");
                continue;
            }
            let target = truncation_offset(p, answer.leader_epoch, answer.end_offset);
            cuts.push((Arc::clone(p), target, epoch));
        }
    }
    truncate(cuts).await
}

/// Cuts each log at its target on the blocking pool (truncation deletes and rewrites files).
async fn truncate(cuts: Vec<(Arc<Partition>, i64, i32)>) -> Result<(), client::ClientError> {
    if cuts.is_empty() {
        return Ok(());
    }
    let done = tokio::task::spawn_blocking(move || {
        for (p, target, epoch) in cuts {
            if let Err(error) = p.truncate_as_follower(target, epoch) {
                tracing::warn!(topic = %p.topic, partition = p.index, %error, "truncation failed");
            }
        }
    });
    if let Err(error) = done.await {
        tracing::error!(%error, "truncating follower logs failed");
    }
    Ok(())
}

/// Where a follower cuts its log given the leader's answer for its latest epoch: at the
/// leader's end of the largest common epoch, or the follower's own end of it if earlier;
/// at the high watermark when the leader knows no such epoch.
fn truncation_offset(p: &Partition, leader_epoch: i32, leader_end: i64) -> i64 {
    if leader_epoch < 0 || leader_end < 0 {
        return p.log.high_watermark();
    }
    let (local_epoch, local_end) = p.log.end_offset_for_epoch(leader_epoch);
    if local_epoch < 0 {
        return leader_end.min(p.log.log_end_offset());
    }
    leader_end.min(local_end)
}

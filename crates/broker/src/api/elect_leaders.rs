//! ElectLeaders (key 43): move leadership to the preferred replica, or give a leaderless
//! partition an unclean leader. Each partition's outcome is decided from the current image
//! (Kafka's `ELECTION_NOT_NEEDED`, `PREFERRED_LEADER_NOT_AVAILABLE`,
//! `ELIGIBLE_LEADERS_NOT_AVAILABLE`); the eligible ones are elected in one metadata command.

use std::collections::BTreeMap;

use controller::{Command, Election, MetadataImage};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::check_cluster;
use super::{str_bytes, Ctx};

/// Why a partition needs no election or cannot have one, as Kafka's error and message.
fn outcome(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    election: Election,
) -> Result<(), (ResponseError, String)> {
    let Some(p) = image.topic(topic).and_then(|t| t.partition(partition)) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        ));
    };
    let live = |id: i32| image.broker(id).is_some_and(|b| !b.fenced);
    match election {
        Election::Preferred => {
            let preferred = p.replicas[0];
            if p.leader == preferred {
                Err((
                    ResponseError::ElectionNotNeeded,
                    "the preferred replica leads".into(),
                ))
            } else if !p.isr.contains(&preferred) || !live(preferred) {
                Err((
                    ResponseError::PreferredLeaderNotAvailable,
                    format!("preferred replica {preferred} is not a live in-sync replica"),
                ))
            } else {
                Ok(())
            }
        }
        Election::Unclean => {
            if p.leader >= 0 {
                Err((
                    ResponseError::ElectionNotNeeded,
                    "the partition has a leader".into(),
                ))
            } else if !p.replicas.iter().any(|&r| live(r)) {
                Err((
                    ResponseError::EligibleLeadersNotAvailable,
                    "no replica is live".into(),
                ))
            } else {
                Ok(())
            }
        }
    }
}

pub(super) async fn handle(ctx: &Ctx<'_>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    // Kafka: ALTER on the cluster, or every partition (and, from v1, the response) fails.
    let denied = check_cluster(ctx, controller::acl::AclOperation::Alter).err();
    let election = if request.election_type == 1 {
        Election::Unclean
    } else {
        Election::Preferred
    };
    let image = ctx.broker.image();
    // Null means every partition of every topic.
    let wanted: Vec<(String, i32)> = match &request.topic_partitions {
        Some(topics) => topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.0.as_str().to_owned(), *p))
            })
            .collect(),
        None => image
            .shared_topics()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
            .collect(),
    };
    let mut results: BTreeMap<(String, i32), Result<(), (ResponseError, String)>> = wanted
        .into_iter()
        .map(|(t, p)| {
            let result = match denied {
                Some(denied) => Err((denied, "Authorization failed.".to_owned())),
                None => outcome(&image, &t, p, election),
            };
            ((t, p), result)
        })
        .collect();
    let eligible: Vec<(String, i32)> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(k, _)| k.clone())
        .collect();
    if !eligible.is_empty() {
        let command = Command::ElectLeaders {
            partitions: eligible.clone(),
            election,
        };
        if let Err(error) = ctx.broker.submit(command).await {
            for key in &eligible {
                results.insert(
                    key.clone(),
                    Err((ResponseError::RequestTimedOut, error.to_string())),
                );
            }
        }
    }
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), result) in results {
        let mut r = PartitionResult::default().with_partition_id(partition);
        if let Err((error, message)) = result {
            r = r
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)));
        }
        by_topic.entry(topic).or_default().push(r);
    }
    ElectLeadersResponse::default()
        .with_error_code(denied.map_or(0, |e| e.code()))
        .with_replica_election_results(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(str_bytes(topic)))
                        .with_partition_result(partitions)
                })
                .collect(),
        )
}

//! Replica administration: partition reassignments and leader elections.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Cluster, Result};

/// A partition move in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Every replica during the move (target and old).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas dropped once the added ones are in sync.
    pub removing: Vec<i32>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

impl Cluster {
    /// Moves partitions of `topic` to new replica lists (`Some`), or cancels their move
    /// (`None`).
    pub async fn reassign_partitions(
        &mut self,
        topic: &str,
        partitions: &[(i32, Option<Vec<i32>>)],
    ) -> Result<()> {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|(p, replicas)| {
                            ReassignablePartition::default()
                                .with_partition_index(*p)
                                .with_replicas(
                                    replicas
                                        .as_ref()
                                        .map(|r| r.iter().map(|&b| BrokerId(b)).collect()),
                                )
                        })
                        .collect(),
                ),
        ]);
        let response = self.any().send(request, 0).await?;
        ClientError::check(
            response.error_code,
            "reassigning partitions",
            response.error_message.as_deref(),
        )?;
        for t in &response.responses {
            for p in &t.partitions {
                ClientError::check(
                    p.error_code,
                    format!("reassigning {}-{}", t.name.0.as_str(), p.partition_index),
                    p.error_message.as_deref(),
                )?;
            }
        }
        Ok(())
    }

    /// The partition moves in progress.
    pub async fn list_reassignments(&mut self) -> Result<Vec<Reassignment>> {
        let response = self
            .any()
            .send(ListPartitionReassignmentsRequest::default(), 0)
            .await?;
        ClientError::check(
            response.error_code,
            "listing reassignments",
            response.error_message.as_deref(),
        )?;
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
        Ok(response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| Reassignment {
                    topic: t.name.0.as_str().to_owned(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect())
    }

    /// Moves leadership of `topic`'s partitions (every topic's when `None`) back to their
    /// preferred replicas; returns the partitions that changed leader. Partitions already
    /// led by their preferred replica are not errors.
    pub async fn elect_preferred_leaders(
        &mut self,
        topic: Option<&str>,
    ) -> Result<Vec<(String, i32)>> {
        let topic_partitions = match topic {
            None => None,
            Some(name) => {
                let topics = self.metadata(Some(&[name]), false).await?;
                let info = topics
                    .first()
                    .ok_or_else(|| ClientError::Protocol(format!("topic {name} not found")))?;
                Some(vec![TopicPartitions::default()
                    .with_topic(topic_name(name))
                    .with_partitions(
                        info.partitions.iter().map(|p| p.partition).collect(),
                    )])
            }
        };
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(topic_partitions);
        let response = self.any().send(request, 2).await?;
        let mut elected = Vec::new();
        for t in &response.replica_election_results {
            for p in &t.partition_result {
                // ELECTION_NOT_NEEDED (84) is the normal answer for a balanced partition.
                if p.error_code == 84 {
                    continue;
                }
                ClientError::check(
                    p.error_code,
                    format!("electing {}-{}", t.topic.0.as_str(), p.partition_id),
                    p.error_message.as_deref(),
                )?;
                elected.push((t.topic.0.as_str().to_owned(), p.partition_id));
            }
        }
        Ok(elected)
    }
}

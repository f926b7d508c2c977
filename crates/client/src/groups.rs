//! Consumer group administration: list, describe with lag, delete, and offset resets.

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Cluster, Connection, Result};

/// A group member as DescribeGroups shows it, with its decoded assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Assigned partitions by topic (consumer protocol).
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Kafka state name (Stable, Empty, Dead, ...).
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Chosen assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Decodes a ConsumerProtocolAssignment: version, then topics with partitions.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        Some(i16::from_be_bytes(take(b, 2)?.try_into().ok()?))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(b, 4)?.try_into().ok()?))
    }
    let mut b = bytes;
    let decode = |b: &mut &[u8]| -> Option<Vec<(String, Vec<i32>)>> {
        i16_(b)?;
        let topics = i32_(b)?;
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            let len = usize::try_from(i16_(b)?).ok()?;
            let name = String::from_utf8(take(b, len)?.to_vec()).ok()?;
            let count = i32_(b)?;
            let partitions = (0..count.max(0))
                .map(|_| i32_(b))
                .collect::<Option<Vec<_>>>()?;
            out.push((name, partitions));
        }
        Some(out)
    };
    decode(&mut b).unwrap_or_default()
}

impl Cluster {
    /// The connection to a group's coordinator.
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Connection> {
        let request = FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0);
        let response = self.any().send(request, 3).await?;
        ClientError::check(
            response.error_code,
            format!("finding the coordinator of {group}"),
            response.error_message.as_deref(),
        )?;
        let id = response.node_id.0;
        if !self.brokers().contains_key(&id) {
            self.metadata(Some(&[]), false).await?;
        }
        self.broker(id).await
    }

    /// Every group: (id, protocol type, state).
    pub async fn list_groups(&mut self) -> Result<Vec<(String, String, String)>> {
        self.metadata(Some(&[]), false).await?;
        let ids: Vec<i32> = self.brokers().keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            let response = self
                .broker(id)
                .await?
                .send(ListGroupsRequest::default(), 4)
                .await?;
            ClientError::check(response.error_code, "listing groups", None)?;
            out.extend(response.groups.into_iter().map(|g| {
                (
                    g.group_id.0.as_str().to_owned(),
                    g.protocol_type.as_str().to_owned(),
                    g.group_state.as_str().to_owned(),
                )
            }));
        }
        out.sort();
        Ok(out)
    }

    /// A group's state and members.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
        let response = self.coordinator(group).await?.send(request, 5).await?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("empty DescribeGroups response".into()))?;
        ClientError::check(
            g.error_code,
            format!("describing group {group}"),
            g.error_message.as_deref(),
        )?;
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.as_str().to_owned(),
            protocol_type: g.protocol_type.as_str().to_owned(),
            protocol: g.protocol_data.as_str().to_owned(),
            members: g
                .members
                .iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.as_str().to_owned(),
                    client_id: m.client_id.as_str().to_owned(),
                    client_host: m.client_host.as_str().to_owned(),
                    assignment: decode_assignment(&m.member_assignment),
                })
                .collect(),
        })
    }

    /// A group's committed offsets: (topic, partition, offset).
    pub async fn committed_offsets(&mut self, group: &str) -> Result<Vec<(String, i32, i64)>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(None);
        let response = self.coordinator(group).await?.send(request, 7).await?;
        ClientError::check(
            response.error_code,
            format!("fetching offsets of {group}"),
            None,
        )?;
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                ClientError::check(
                    p.error_code,
                    format!("offset of {}-{}", t.name.0.as_str(), p.partition_index),
                    None,
                )?;
                out.push((
                    t.name.0.as_str().to_owned(),
                    p.partition_index,
                    p.committed_offset,
                ));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes empty groups.
    pub async fn delete_groups(&mut self, groups: &[&str]) -> Result<()> {
        for group in groups {
            let request =
                DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]);
            let response = self.coordinator(group).await?.send(request, 2).await?;
            for r in response.results {
                ClientError::check(r.error_code, format!("deleting group {group}"), None)?;
            }
        }
        Ok(())
    }

    /// Commits offsets for a group from outside it (the group must have no members).
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::new()));
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::new())
            .with_topics(topics);
        let response = self.coordinator(group).await?.send(request, 7).await?;
        for t in response.topics {
            for p in t.partitions {
                ClientError::check(
                    p.error_code,
                    format!(
                        "committing {}-{} for {group}",
                        t.name.0.as_str(),
                        p.partition_index
                    ),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_assignments_decode() {
        // version 0, 1 topic "t" with partitions [0, 2], no user data
        let bytes = [
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff,
            0xff,
        ];
        assert_eq!(
            decode_assignment(&bytes),
            vec![("t".to_owned(), vec![0, 2])]
        );
        assert!(decode_assignment(&[1]).is_empty());
    }
}

//! A client of a whole cluster: bootstrap, metadata, and a connection per broker.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Connection, Result, Security};

/// A partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// Leader broker id (-1 if none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica ids.
    pub isr: Vec<i32>,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id (UUID text).
    pub topic_id: String,
    /// Internal topic.
    pub internal: bool,
    /// Partitions in order.
    pub partitions: Vec<PartitionInfo>,
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Connections to a cluster, found from a bootstrap address.
#[derive(Debug)]
pub struct Cluster {
    security: Security,
    bootstrap: Connection,
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// The coordinator last found for each transactional id the producer calls used,
    /// forgotten when it answers NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE or cannot be
    /// reached (as Kafka's producer keeps its coordinator).
    pub(crate) txn_coordinators: HashMap<String, i32>,
}

impl Cluster {
    /// Connects to `bootstrap` (`host:port`, or several comma-separated: the first that
    /// answers) over plain text.
    pub async fn connect(bootstrap: &str) -> Result<Self> {
        Self::connect_with(bootstrap, &Security::default()).await
    }

    /// Connects to `bootstrap` as [`Cluster::connect`] does, reaching it and every broker
    /// with `security` (TLS, SASL).
    pub async fn connect_with(bootstrap: &str, security: &Security) -> Result<Self> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match security.connect(addr).await {
                Ok(conn) => {
                    let mut cluster = Self {
                        security: security.clone(),
                        bootstrap: conn,
                        brokers: HashMap::new(),
                        connections: HashMap::new(),
                        txn_coordinators: HashMap::new(),
                    };
                    cluster.metadata(Some(&[]), false).await?;
                    return Ok(cluster);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no bootstrap address".into())))
    }

    /// The bootstrap connection, for requests any broker answers.
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Topic metadata: `None` lists every topic.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Result<Vec<TopicInfo>> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|t| {
                t.iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(name(n))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let response = self.bootstrap.send(request, 12).await?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let mut out = Vec::new();
        for t in response.topics {
            let topic_name = t
                .name
                .as_ref()
                .map(|n| n.0.as_str().to_owned())
                .unwrap_or_default();
            ClientError::check(
                t.error_code,
                format!("metadata of topic {topic_name}"),
                None,
            )?;
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            out.push(TopicInfo {
                name: topic_name,
                topic_id: t.topic_id.to_string(),
                internal: t.is_internal,
                partitions,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Brokers by id, as the last Metadata listed them.
    pub fn brokers(&self) -> &HashMap<i32, String> {
        &self.brokers
    }

    /// Drops the connection to broker `id`, if any; the next [`Cluster::broker`] reconnects.
    pub(crate) fn forget_connection(&mut self, id: i32) {
        self.connections.remove(&id);
    }

    /// The connection to broker `id`.
    pub async fn broker(&mut self, id: i32) -> Result<&mut Connection> {
        if !self.connections.contains_key(&id) {
            let addr = self.brokers.get(&id).cloned().ok_or_else(|| {
                ClientError::Protocol(format!("broker {id} is not in the metadata"))
            })?;
            let conn = self.security.connect(&addr).await?;
            self.connections.insert(id, conn);
        }
        Ok(self.connections.get_mut(&id).expect("inserted above"))
    }

    /// Creates a topic; `partitions` and `replication_factor` of -1 take the broker defaults.
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(text(k))
                                .with_value(Some(text(v)))
                        })
                        .collect(),
                )]);
        let response = self.bootstrap.send(request, 7).await?;
        for t in response.topics {
            ClientError::check(
                t.error_code,
                format!("creating topic {topic}"),
                t.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&mut self, topics: &[&str]) -> Result<()> {
        let version = self.bootstrap.version::<DeleteTopicsRequest>(6)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(30_000);
        if version >= 6 {
            request.topics = topics
                .iter()
                .map(|t| DeleteTopicState::default().with_name(Some(name(t))))
                .collect();
        } else {
            request.topic_names = topics.iter().map(|t| name(t)).collect();
        }
        let response = self.bootstrap.send(request, version).await?;
        for r in response.responses {
            let n = r
                .name
                .as_ref()
                .map(|n| n.0.as_str().to_owned())
                .unwrap_or_default();
            ClientError::check(
                r.error_code,
                format!("deleting topic {n}"),
                r.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// A topic's effective configs: (name, value, source code).
    pub async fn describe_topic_configs(
        &mut self,
        topic: &str,
    ) -> Result<Vec<(String, Option<String>, i8)>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text(topic))
                .with_configuration_keys(None),
        ]);
        let response = self.bootstrap.send(request, 4).await?;
        let mut out = Vec::new();
        for r in response.results {
            ClientError::check(
                r.error_code,
                format!("describing configs of {topic}"),
                r.error_message.as_deref(),
            )?;
            for c in r.configs {
                out.push((
                    c.name.as_str().to_owned(),
                    c.value.map(|v| v.as_str().to_owned()),
                    c.config_source,
                ));
            }
        }
        Ok(out)
    }

    /// Sets (`Some`) or deletes (`None`) topic configs.
    pub async fn alter_topic_configs(
        &mut self,
        topic: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let configs = changes
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(if v.is_some() { 0 } else { 1 })
                    .with_value(v.as_deref().map(text))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text(topic))
                .with_configs(configs),
        ]);
        let response = self.bootstrap.send(request, 1).await?;
        for r in response.responses {
            ClientError::check(
                r.error_code,
                format!("altering configs of {topic}"),
                r.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// The leader of `topic`-`partition` according to fresh metadata (-1 if it has none).
    pub async fn leader_id(&mut self, topic: &str, partition: i32) -> Result<i32> {
        let topics = self.metadata(Some(&[topic]), false).await?;
        topics
            .first()
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
            .map(|p| p.leader)
            .ok_or_else(|| ClientError::Protocol(format!("{topic}-{partition} does not exist")))
    }

    async fn leader(&mut self, topic: &str, partition: i32) -> Result<&mut Connection> {
        let leader = self.leader_id(topic, partition).await?;
        self.broker(leader).await
    }

    /// Allocates an idempotent producer id and epoch (InitProducerId without a
    /// transactional id).
    pub async fn init_producer_id(&mut self) -> Result<(i64, i16)> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = self.bootstrap.send(request, 4).await?;
        ClientError::check(response.error_code, "InitProducerId", None)?;
        Ok((response.producer_id.0, response.producer_epoch))
    }

    /// Produces one batch to a partition with acks=-1; returns its base offset.
    pub async fn produce(&mut self, topic: &str, partition: i32, batch: Bytes) -> Result<i64> {
        let conn = self.leader(topic, partition).await?;
        produce_on(conn, topic, partition, -1, batch).await
    }

    /// ListOffsets for one partition: -1 latest, -2 earliest, or a timestamp.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)
                    .with_current_leader_epoch(-1)])]);
        let conn = self.leader(topic, partition).await?;
        let response = conn.send(request, 7).await?;
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("empty list offsets response".into()))?;
        ClientError::check(
            p.error_code,
            format!("listing offsets of {topic}-{partition}"),
            None,
        )?;
        Ok(p.offset)
    }

    /// Fetches from one partition: its records bytes and high watermark.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait: Duration,
    ) -> Result<(Bytes, i64)> {
        let conn = self.leader(topic, partition).await?;
        fetch_on(conn, topic, partition, offset, max_wait).await
    }
}

/// Produces one batch to `topic`-`partition` over `conn` (which must reach its leader) with
/// `acks` (-1, 0 or 1); returns the base offset (-1 with acks=0).
pub async fn produce_on(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    acks: i16,
    batch: Bytes,
) -> Result<i64> {
    produce_as(conn, None, topic, partition, acks, batch).await
}

/// [`produce_on`] for a transactional batch of `transactional_id`'s producer.
pub async fn produce_transactional_on(
    conn: &mut Connection,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> Result<i64> {
    produce_as(conn, Some(transactional_id), topic, partition, -1, batch).await
}

async fn produce_as(
    conn: &mut Connection,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    acks: i16,
    batch: Bytes,
) -> Result<i64> {
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id.map(|t| TransactionalId(text(t))))
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    if acks == 0 {
        conn.send_only(request, 9).await?;
        return Ok(-1);
    }
    let response = conn.send(request, 9).await?;
    let p = response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| ClientError::Protocol("empty produce response".into()))?;
    ClientError::check(
        p.error_code,
        format!("producing to {topic}-{partition}"),
        p.error_message.as_deref(),
    )?;
    Ok(p.base_offset)
}

/// Fetches from `topic`-`partition` over `conn` (which must reach its leader): the records
/// bytes and the high watermark.
pub async fn fetch_on(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
) -> Result<(Bytes, i64)> {
    fetch_isolated(conn, topic, partition, offset, max_wait, false).await
}

/// [`fetch_on`] as a read_committed consumer: records up to the last stable offset (the
/// second value), aborted transactions' records dropped.
pub async fn fetch_committed_on(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
) -> Result<(Bytes, i64)> {
    fetch_isolated(conn, topic, partition, offset, max_wait, true).await
}

async fn fetch_isolated(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
    read_committed: bool,
) -> Result<(Bytes, i64)> {
    let request = FetchRequest::default()
        .with_isolation_level(i8::from(read_committed))
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let response = conn.send_with_timeout(request, 12, max_wait).await?;
    ClientError::check(response.error_code, "fetch", None)?;
    let p = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ClientError::Protocol("empty fetch response".into()))?;
    ClientError::check(
        p.error_code,
        format!("fetching {topic}-{partition} at {offset}"),
        None,
    )?;
    if !read_committed {
        return Ok((p.records.clone().unwrap_or_default(), p.high_watermark));
    }
    let records = p.records.clone().unwrap_or_default();
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    Ok((drop_aborted(records, &aborted), p.last_stable_offset))
}

/// The whole batches of `records` without those of aborted transactions, as a read_committed
/// consumer drops them: `aborted` lists (producer id, first offset) from the fetch response;
/// a producer's transactional batches are dropped from its first offset up to its next
/// control batch (the ABORT marker). A cut batch at the end is kept as it is.
fn drop_aborted(records: Bytes, aborted: &[(i64, i64)]) -> Bytes {
    if aborted.is_empty() {
        return records;
    }
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|(_, first)| std::cmp::Reverse(*first));
    let mut active = std::collections::HashSet::new();
    let mut kept = bytes::BytesMut::with_capacity(records.len());
    let mut rest = records;
    while rest.len() >= 61 {
        let be64 = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
        let base_offset = be64(&rest[0..8]);
        let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let Some(total) = usize::try_from(len).ok().map(|l| l + 12) else {
            break;
        };
        if rest.len() < total {
            break;
        }
        let attributes = i16::from_be_bytes(rest[21..23].try_into().expect("2 bytes"));
        let last_delta = i32::from_be_bytes(rest[23..27].try_into().expect("4 bytes"));
        let producer_id = be64(&rest[43..51]);
        let last_offset = base_offset + i64::from(last_delta);
        while pending
            .last()
            .is_some_and(|(_, first)| *first <= last_offset)
        {
            let (pid, _) = pending.pop().expect("checked");
            active.insert(pid);
        }
        let batch = rest.split_to(total);
        let transactional = attributes & 0x10 != 0;
        let control = attributes & 0x20 != 0;
        if transactional && active.contains(&producer_id) {
            if control {
                active.remove(&producer_id);
            }
            continue;
        }
        kept.extend_from_slice(&batch);
    }
    kept.extend_from_slice(&rest);
    kept.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_records, encode_transactional_batch, OwnedRecord, ProducerIdentity};

    /// A one-record batch at `offset`: transactional data of `producer`, or its marker.
    fn batch(offset: i64, producer: i64, value: &str, control: bool) -> Vec<u8> {
        let record = OwnedRecord {
            offset: 0,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(value.to_owned())),
            headers: Vec::new(),
        };
        let identity = ProducerIdentity {
            producer_id: producer,
            producer_epoch: 0,
            base_sequence: 0,
        };
        let mut bytes = encode_transactional_batch(&[record], crate::Compression::None, identity)
            .unwrap()
            .to_vec();
        bytes[..8].copy_from_slice(&offset.to_be_bytes());
        if control {
            // The control bit is covered by the CRC, which read_committed filtering ignores.
            bytes[22] |= 0x20;
        }
        bytes
    }

    #[test]
    fn read_committed_drops_aborted_transactions_up_to_their_marker() {
        let records: Vec<u8> = [
            batch(0, 1, "aborted", false),
            batch(1, 2, "other", false),
            batch(2, 1, "", true),
            batch(3, 1, "next", false),
        ]
        .concat();
        let kept = drop_aborted(Bytes::from(records.clone()), &[(1, 0)]);
        let values: Vec<Bytes> = decode_records(&kept)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.value)
            .collect();
        assert_eq!(
            values,
            vec![Bytes::from_static(b"other"), Bytes::from_static(b"next")]
        );
        assert_eq!(
            drop_aborted(Bytes::from(records.clone()), &[]),
            Bytes::from(records),
            "nothing aborted: all kept"
        );
    }
}

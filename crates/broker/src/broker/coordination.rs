//! The broker's side of the coordinators: [`CoordinatorLog`] over its partitions, the
//! leadership of `__consumer_offsets` and `__transaction_state` handed to the group and
//! transaction coordinators after every reconcile, the replay of gained partitions off the
//! metadata path, and creating and locating both topics.

use std::sync::Arc;

use controller::{BrokerMeta, Command, ControllerError};
use coordinator::group::records;
use coordinator::log::{decode_batches, encode_batch};
use coordinator::txn::TRANSACTION_STATE_TOPIC;
use coordinator::{CoordinatorLog, Load, LogEntry, LogError, Record, Replication, OFFSETS_TOPIC};
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::Broker;
use crate::partition::{AppendOrigin, Partition};

/// Coordinator partitions with at most this many offsets are replayed inline (milliseconds).
const INLINE_LOAD_RECORDS: i64 = 10_000;

/// Most bytes a replay reads at a time.
const REPLAY_READ_BYTES: usize = 16 << 20;

/// A coordinator partition led here, as the coordinators see it. Made afresh on every
/// reconcile; its identity is the partition's, so that a partition still led here keeps its
/// loaded groups (and is not unloaded and replayed on every metadata change).
#[derive(Debug)]
struct CoordinatorPartition(Arc<Partition>);

impl CoordinatorLog for CoordinatorPartition {
    fn offsets(&self) -> (i64, i64) {
        (self.0.log.log_start_offset(), self.0.log.log_end_offset())
    }

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<LogEntry>, i64)>, LogError> {
        let read = self
            .0
            .log
            .read(from, REPLAY_READ_BYTES, end, true)
            .map_err(|e| LogError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        Ok(last_offset_in(&read.records).map(|last| (decode_batches(&read.records), last + 1)))
    }

    fn append_as(
        &self,
        records: &[Record],
        producer: Option<(i64, i16)>,
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        let appended = self.0.append(
            encode_batch(records, now_ms, producer),
            -1,
            AppendOrigin::Coordinator,
            None,
        );
        Ok(Box::pin(async move {
            let produced = appended
                .await
                .map_err(|e| LogError::new(e.kafka_error(), e.to_string()))?;
            self.0
                .wait_committed(&produced, deadline)
                .await
                .map_err(|error| LogError::new(error, "waiting for replication failed"))
        }))
    }

    fn leader_epoch(&self) -> i32 {
        self.0.leader_epoch()
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

/// The partitions of a coordinator's topic led here, as the coordinator takes them.
type LedLogs = Vec<(i32, Arc<dyn CoordinatorLog>)>;

/// A gained coordinator partition to replay, and whose.
#[derive(Debug)]
pub(crate) enum CoordinatorLoad {
    /// A `__consumer_offsets` partition.
    Groups(Load),
    /// A `__transaction_state` partition.
    Transactions(Load),
}

impl Broker {
    /// The partitions of `topic` led here now, as coordinator logs, and its partition count.
    fn led_coordinator_logs(&self, topic: &str) -> (Option<i32>, LedLogs) {
        let topic = self.topic(topic);
        let count = topic.as_ref().map(|t| t.replicas.len() as i32);
        let led = topic
            .iter()
            .flat_map(|t| t.led_partitions())
            .map(|p| {
                let log = CoordinatorPartition(Arc::clone(p));
                (p.index, Arc::new(log) as Arc<dyn CoordinatorLog>)
            })
            .collect();
        (count, led)
    }

    /// Hands the coordinators the `__consumer_offsets` and `__transaction_state` partitions
    /// led here now; returns the loads of those gained. Called under the reconcile lock.
    pub(super) fn update_coordinators(&self) -> Vec<CoordinatorLoad> {
        let (count, led) = self.led_coordinator_logs(OFFSETS_TOPIC);
        let mut loads: Vec<CoordinatorLoad> = self
            .groups
            .update(count, led)
            .into_iter()
            .map(CoordinatorLoad::Groups)
            .collect();
        let (count, led) = self.led_coordinator_logs(TRANSACTION_STATE_TOPIC);
        loads.extend(
            self.txns
                .update(count, led)
                .into_iter()
                .map(CoordinatorLoad::Transactions),
        );
        loads
    }

    /// Replays gained coordinator partitions. Short ones (at most [`INLINE_LOAD_RECORDS`]
    /// offsets, a new internal topic above all) replay here, on the caller's blocking
    /// thread, so the broker that just created or gained them answers for their keys as soon
    /// as the metadata change is applied; longer ones replay each on a blocking thread of its
    /// own, their keys answering COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    pub(super) fn run_loads(&self, loads: Vec<CoordinatorLoad>) {
        for load in loads {
            let (topic, partition) = match &load {
                CoordinatorLoad::Groups(l) => (OFFSETS_TOPIC, l.partition()),
                CoordinatorLoad::Transactions(l) => (TRANSACTION_STATE_TOPIC, l.partition()),
            };
            let short = self
                .topic(topic)
                .as_ref()
                .and_then(|t| t.led(partition).ok())
                .is_none_or(|p| {
                    p.log.log_end_offset() - p.log.log_start_offset() <= INLINE_LOAD_RECORDS
                });
            let (groups, txns) = (Arc::clone(&self.groups), Arc::clone(&self.txns));
            let run = move || {
                // `load` logs its outcome.
                let _ = match load {
                    CoordinatorLoad::Groups(load) => groups.load(load),
                    CoordinatorLoad::Transactions(load) => txns.load(load),
                };
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) if !short => {
                    runtime.spawn_blocking(run);
                }
                _ => run(),
            }
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub(crate) async fn ensure_offsets_topic(self: &Arc<Self>) -> Result<(), ControllerError> {
        let (partitions, replication) = (
            self.config.offsets_topic_partitions,
            self.config.offsets_topic_replication_factor,
        );
        self.ensure_internal_topic(OFFSETS_TOPIC, partitions, replication, None)
            .await
    }

    /// Creates `__transaction_state` if it does not exist yet.
    pub(crate) async fn ensure_transaction_topic(self: &Arc<Self>) -> Result<(), ControllerError> {
        self.ensure_internal_topic(
            TRANSACTION_STATE_TOPIC,
            self.config.transaction_state_partitions,
            self.config.transaction_state_replication_factor,
            Some(self.config.transaction_state_min_isr),
        )
        .await
    }

    /// Creates the compacted internal topic `name` unless it exists. Its replication factor,
    /// and `min_isr` with it, are capped by the live brokers, so a cluster smaller than the
    /// configured factor (a single node) still gets the topic.
    async fn ensure_internal_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        replication: i16,
        min_isr: Option<i16>,
    ) -> Result<(), ControllerError> {
        if self.image().topic(name).is_some() {
            return Ok(());
        }
        let brokers = self.live_brokers();
        let replication = replication.min(brokers.len().max(1) as i16);
        let assignments = controller::assign_replicas(&brokers, partitions, replication, 0)?;
        let mut configs: std::collections::BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "104857600"),
            ("compression.type", "producer"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(min_isr) = min_isr {
            let min_isr = min_isr.clamp(1, replication);
            configs.insert("min.insync.replicas".to_owned(), min_isr.to_string());
        }
        let command = Command::CreateTopic {
            name: name.to_owned(),
            topic_id: Uuid::new_v4(),
            assignments,
            configs,
        };
        match self.submit(command).await {
            Ok(_)
            | Err(ControllerError::Rejected(controller::Rejection::TopicAlreadyExists(_))) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The broker that coordinates `group`: the leader of its `__consumer_offsets`
    /// partition (`None` while the topic does not exist, that partition has no leader, or
    /// this node leads it in the metadata but has not applied that yet: a client told to
    /// come here would be answered NOT_COORDINATOR).
    pub(crate) fn coordinator_for(&self, group: &str) -> Option<BrokerMeta> {
        self.coordinator_of(OFFSETS_TOPIC, group, || {
            matches!(
                self.groups.group(group),
                Err(coordinator::CoordinatorError::NotCoordinator)
            )
        })
    }

    /// The broker that coordinates `transactional_id`, as [`Self::coordinator_for`] does
    /// for groups, over `__transaction_state`.
    pub(crate) fn transaction_coordinator_for(&self, transactional_id: &str) -> Option<BrokerMeta> {
        self.coordinator_of(TRANSACTION_STATE_TOPIC, transactional_id, || {
            self.txns.coordinates(transactional_id) == Err(ResponseError::NotCoordinator)
        })
    }

    /// The live leader of `key`'s partition of `topic`, unless that is this node and
    /// `not_applied_here` says it has not taken the leadership yet.
    fn coordinator_of(
        &self,
        topic: &str,
        key: &str,
        not_applied_here: impl FnOnce() -> bool,
    ) -> Option<BrokerMeta> {
        let image = self.image();
        let topic = image.topic(topic)?;
        let index = records::partition_for(key, topic.partitions.len() as i32);
        let leader = topic.partition(index)?.leader;
        if leader == self.config.node_id && not_applied_here() {
            return None;
        }
        image.broker(leader).filter(|b| !b.fenced).cloned()
    }
}

/// The last offset of the whole batches in `records`.
fn last_offset_in(records: &bytes::Bytes) -> Option<i64> {
    let mut rest: &[u8] = records;
    let mut last = None;
    while let Some(header) = segment_store::BatchHeader::parse(rest) {
        if header.total_size() > rest.len() {
            break;
        }
        last = Some(header.last_offset());
        rest = &rest[header.total_size()..];
    }
    last
}

//! The broker's side of the coordinators: [`CoordinatorLog`] over its partitions, the
//! leadership of `__consumer_offsets` handed to the group coordinator after every
//! reconcile, the replay of gained partitions off the metadata path, and creating and
//! locating `__consumer_offsets`.

use std::sync::Arc;

use controller::{BrokerMeta, Command, ControllerError};
use coordinator::group::records;
use coordinator::log::{decode_batches, encode_batch};
use coordinator::{CoordinatorLog, Load, LogError, Record, Replication, OFFSETS_TOPIC};
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

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<Record>, i64)>, LogError> {
        let read = self
            .0
            .log
            .read(from, REPLAY_READ_BYTES, end, true)
            .map_err(|e| LogError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        Ok(last_offset_in(&read.records).map(|last| (decode_batches(&read.records), last + 1)))
    }

    fn append(
        &self,
        records: &[Record],
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        let appended = self.0.append(
            encode_batch(records, now_ms),
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

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

impl Broker {
    /// Hands the group coordinator the `__consumer_offsets` partitions led here now; returns
    /// the loads of those gained. Called under the reconcile lock.
    pub(super) fn update_coordinators(&self) -> Vec<Load> {
        let topic = self.topic(OFFSETS_TOPIC);
        let count = topic.as_ref().map(|t| t.replicas.len() as i32);
        let led: Vec<(i32, Arc<dyn CoordinatorLog>)> = topic
            .iter()
            .flat_map(|t| t.led_partitions())
            .map(|p| {
                let log = CoordinatorPartition(Arc::clone(p));
                (p.index, Arc::new(log) as Arc<dyn CoordinatorLog>)
            })
            .collect();
        self.groups.update(count, led)
    }

    /// Replays gained coordinator partitions. Short ones (at most [`INLINE_LOAD_RECORDS`]
    /// offsets, a new `__consumer_offsets` above all) replay here, on the caller's blocking
    /// thread, so the broker that just created or gained them answers for their groups as soon
    /// as the metadata change is applied; longer ones replay each on a blocking thread of its
    /// own, their groups answering COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    pub(super) fn run_loads(&self, loads: Vec<Load>) {
        let topic = self.topic(OFFSETS_TOPIC);
        for load in loads {
            let short = topic
                .as_ref()
                .and_then(|t| t.led(load.partition()).ok())
                .is_none_or(|p| {
                    p.log.log_end_offset() - p.log.log_start_offset() <= INLINE_LOAD_RECORDS
                });
            let groups = Arc::clone(&self.groups);
            let run = move || {
                // `load` logs its outcome.
                let _ = groups.load(load);
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
        if self.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let brokers = self.live_brokers();
        let replication = self
            .config
            .offsets_topic_replication_factor
            .min(brokers.len().max(1) as i16);
        let assignments = controller::assign_replicas(
            &brokers,
            self.config.offsets_topic_partitions,
            replication,
            0,
        )?;
        let configs = [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "104857600"),
            ("compression.type", "producer"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let command = Command::CreateTopic {
            name: OFFSETS_TOPIC.to_owned(),
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
        let image = self.image();
        let topic = image.topic(OFFSETS_TOPIC)?;
        let index = records::partition_for(group, topic.partitions.len() as i32);
        let leader = topic.partition(index)?.leader;
        if leader == self.config.node_id
            && matches!(
                self.groups.group(group),
                Err(coordinator::CoordinatorError::NotCoordinator)
            )
        {
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

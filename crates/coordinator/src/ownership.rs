//! Ownership of a coordinator's internal topic: which of its partitions this node leads,
//! which of those are still being replayed, the replay itself, and forgetting the state of
//! partitions led elsewhere now. Generic over the topic and the state kept from it, so every
//! coordinator (groups in `__consumer_offsets`, later transactions in
//! `__transaction_state`) shares it.
//!
//! The broker reports leadership with [`CoordinatorPartitions::update`] (cheap: it only marks
//! gained partitions as loading and unloads lost ones) and runs the returned [`Load`]s
//! afterwards, off its metadata path; until a load finishes, keys of that partition answer
//! [`CoordinatorError::LoadInProgress`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::error::{CoordinatorError, LogError};
use crate::log::{CoordinatorLog, LogEntry};

/// The state a coordinator rebuilds from its internal topic.
pub trait CoordinatorState: Send + Sync {
    /// Applies one record read back from the topic, in log order.
    fn replay(&self, key: &Bytes, value: Option<&Bytes>);

    /// A record of `producer_id`'s transaction: it counts once that producer's COMMIT
    /// marker is replayed. Coordinators that write no transactional records apply it as is.
    fn replay_transactional(&self, producer_id: i64, key: &Bytes, value: Option<&Bytes>) {
        let _ = producer_id;
        self.replay(key, value);
    }

    /// `producer_id`'s transaction ended (`commit` or abort).
    fn replay_marker(&self, producer_id: i64, commit: bool) {
        let _ = (producer_id, commit);
    }

    /// Forgets every key for which `moved` holds: its partition is led elsewhere now, and
    /// leading it again replays it afresh.
    fn unload(&self, moved: &dyn Fn(&str) -> bool);
}

/// A replay of one gained partition, to run with [`CoordinatorPartitions::load`]; a load
/// overtaken by a later leadership change does nothing.
#[derive(Debug)]
#[must_use = "a gained partition answers LOAD_IN_PROGRESS until its load runs"]
pub struct Load {
    partition: i32,
    id: u64,
}

impl Load {
    /// The partition to replay.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

struct Slot {
    log: Arc<dyn CoordinatorLog>,
    /// The partition's leader epoch when it was gained: the coordinator epoch of what is
    /// loaded (Kafka's `coordinatorEpoch`). Another epoch of the same log is another
    /// leadership, loaded afresh.
    epoch: i32,
    /// The id of the load still to finish, if any.
    loading: Option<u64>,
}

#[derive(Default)]
struct Led {
    /// The topic's partition count; `None` while the topic does not exist here.
    count: Option<i32>,
    partitions: HashMap<i32, Slot>,
}

/// The partitions of one internal topic led by this node, and the state kept from them.
pub struct CoordinatorPartitions<S> {
    topic: &'static str,
    partition_for: fn(&str, i32) -> i32,
    state: S,
    led: RwLock<Led>,
    next_load: AtomicU64,
}

impl<S> std::fmt::Debug for CoordinatorPartitions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let led = self.led.read();
        let mut partitions: Vec<(i32, bool)> = led
            .partitions
            .iter()
            .map(|(p, s)| (*p, s.loading.is_some()))
            .collect();
        partitions.sort_unstable();
        f.debug_struct("CoordinatorPartitions")
            .field("topic", &self.topic)
            .field("count", &led.count)
            .field("led (partition, loading)", &partitions)
            .finish_non_exhaustive()
    }
}

fn same_log(a: &Arc<dyn CoordinatorLog>, b: &Arc<dyn CoordinatorLog>) -> bool {
    a.identity() == b.identity()
}

impl<S: CoordinatorState> CoordinatorPartitions<S> {
    /// Ownership of `topic`, whose keys live in partition `partition_for(key, count)`; no
    /// partition is led until [`Self::update`].
    pub fn new(topic: &'static str, partition_for: fn(&str, i32) -> i32, state: S) -> Self {
        Self {
            topic,
            partition_for,
            state,
            led: RwLock::new(Led::default()),
            next_load: AtomicU64::new(1),
        }
    }

    /// The internal topic's name.
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// The state kept from the topic.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The partition of `key`, when the topic exists here.
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        let count = self.led.read().count?;
        Some((self.partition_for)(key, count))
    }

    /// Takes the topic's leadership as the metadata has it now: `count` partitions (`None`:
    /// the topic is gone) and the logs of those led here. State of partitions no longer led
    /// here (or led through another log, or at another leader epoch: led elsewhere in
    /// between, as Kafka reloads at every election) is forgotten at once; partitions gained
    /// are marked loading, and the returned loads replay them.
    pub fn update(
        &self,
        count: Option<i32>,
        led: Vec<(i32, Arc<dyn CoordinatorLog>)>,
    ) -> Vec<Load> {
        let mut current = self.led.write();
        let mut next: HashMap<i32, Slot> = HashMap::with_capacity(led.len());
        let mut loads = Vec::new();
        for (partition, log) in led {
            let epoch = log.leader_epoch();
            match current.partitions.remove(&partition) {
                Some(slot) if same_log(&slot.log, &log) && slot.epoch == epoch => {
                    next.insert(partition, slot);
                }
                old => {
                    if let Some(old) = old {
                        // Led through another log or at another epoch now: what was
                        // loaded is stale.
                        current.partitions.insert(partition, old);
                    }
                    let id = self.next_load.fetch_add(1, Ordering::Relaxed);
                    next.insert(
                        partition,
                        Slot {
                            log,
                            epoch,
                            loading: Some(id),
                        },
                    );
                    loads.push(Load { partition, id });
                }
            }
        }
        // What is left of the old set is lost (or replaced).
        let lost: Vec<i32> = current.partitions.keys().copied().collect();
        if !lost.is_empty() {
            match count {
                Some(n) => {
                    let partition_for = self.partition_for;
                    self.state
                        .unload(&|key| lost.contains(&partition_for(key, n)));
                }
                None => self.state.unload(&|_| true),
            }
            tracing::info!(topic = self.topic, partitions = ?lost, "coordination moved to other brokers");
        }
        current.count = count;
        current.partitions = next;
        loads
    }

    /// Replays a gained partition into the state, then serves it; blocking (it reads the
    /// log). Returns the number of records replayed. The partition is served even when the
    /// replay fails partway (the error says so).
    pub fn load(&self, load: Load) -> Result<usize, LogError> {
        let is_current = |led: &Led| {
            led.partitions
                .get(&load.partition)
                .is_some_and(|s| s.loading == Some(load.id))
        };
        let log = {
            let led = self.led.read();
            match led.partitions.get(&load.partition) {
                Some(slot) if slot.loading == Some(load.id) => Arc::clone(&slot.log),
                _ => return Ok(0),
            }
        };
        let replayed = (|| {
            let (mut offset, end) = log.offsets();
            let mut count = 0usize;
            while offset < end {
                let Some((records, next)) = log.read(offset, end)? else {
                    break;
                };
                let led = self.led.read();
                if !is_current(&led) {
                    return Ok(count);
                }
                for entry in &records {
                    match entry {
                        LogEntry::Record {
                            key,
                            value,
                            producer_id: None,
                        } => self.state.replay(key, value.as_ref()),
                        LogEntry::Record {
                            key,
                            value,
                            producer_id: Some(producer_id),
                        } => self
                            .state
                            .replay_transactional(*producer_id, key, value.as_ref()),
                        LogEntry::Marker {
                            producer_id,
                            commit,
                        } => self.state.replay_marker(*producer_id, *commit),
                    }
                }
                count += records.len();
                if next <= offset {
                    break;
                }
                offset = next;
            }
            Ok(count)
        })();
        let mut led = self.led.write();
        if let Some(slot) = led.partitions.get_mut(&load.partition) {
            if slot.loading == Some(load.id) {
                slot.loading = None;
                match &replayed {
                    Ok(records) => tracing::info!(
                        topic = self.topic,
                        partition = load.partition,
                        records,
                        "coordinator partition loaded"
                    ),
                    Err(error) => tracing::error!(
                        topic = self.topic,
                        partition = load.partition,
                        %error,
                        "replaying a coordinator partition failed"
                    ),
                }
            }
        }
        replayed
    }

    /// Whether a partition led here is still being replayed.
    pub fn any_loading(&self) -> bool {
        self.led
            .read()
            .partitions
            .values()
            .any(|s| s.loading.is_some())
    }

    /// The log of `key`'s partition when this node leads it and has loaded it; otherwise
    /// why not.
    pub fn owner(&self, key: &str) -> Result<Arc<dyn CoordinatorLog>, CoordinatorError> {
        self.owner_at(key).map(|(log, _)| log)
    }

    /// [`Self::owner`], with the coordinator epoch of what is loaded: the partition's
    /// leader epoch when it was gained. NOT_COORDINATOR once the partition's leader epoch
    /// has moved on (led elsewhere meanwhile; the next [`Self::update`] reloads it), so a
    /// coordinator never acts under an epoch it did not load.
    pub fn owner_at(&self, key: &str) -> Result<(Arc<dyn CoordinatorLog>, i32), CoordinatorError> {
        let led = self.led.read();
        let count = led.count.ok_or(CoordinatorError::NotCoordinator)?;
        let slot = led
            .partitions
            .get(&(self.partition_for)(key, count))
            .ok_or(CoordinatorError::NotCoordinator)?;
        if slot.loading.is_some() {
            return Err(CoordinatorError::LoadInProgress);
        }
        if slot.log.leader_epoch() != slot.epoch {
            return Err(CoordinatorError::NotCoordinator);
        }
        Ok((Arc::clone(&slot.log), slot.epoch))
    }

    /// Whether `partition` is led here and loaded: its keys are served. A transaction
    /// marker written into a partition still loading would be missed by the replay (it
    /// reads up to the end it found when it started), so the broker refuses those
    /// (NOT_LEADER_OR_FOLLOWER, retried by the transaction coordinator) as Kafka does.
    pub fn serves(&self, partition: i32) -> Result<(), CoordinatorError> {
        let led = self.led.read();
        let slot = led
            .partitions
            .get(&partition)
            .ok_or(CoordinatorError::NotCoordinator)?;
        if slot.loading.is_some() {
            return Err(CoordinatorError::LoadInProgress);
        }
        Ok(())
    }
}

//! The broker's shared state: its configuration, the metadata controller, the data directory
//! and the partitions this node leads, kept in step with the metadata image.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller::{Applied, Command, ControllerError, LocalController, MetadataImage, TopicMeta};
use parking_lot::{Mutex, RwLock};
use segment_store::{LogDir, TopicPartition};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::group::{records, GroupCoordinator, OFFSETS_TOPIC};
use crate::partition::Partition;
use crate::topic_config::{self, TopicSettings};

/// Producer ids are reserved from the controller this many at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Failures that stop the broker from starting or stopping cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The data directory could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] segment_store::Error),
    /// The metadata controller failed.
    #[error("metadata: {0}")]
    Controller(#[from] ControllerError),
    /// A file of the broker's own (`meta.properties`) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// The partitions of one topic led here.
#[derive(Debug)]
pub(crate) struct LocalTopic {
    pub(crate) topic_id: Uuid,
    pub(crate) partitions: Vec<Arc<Partition>>,
}

#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

/// One Strata node's broker.
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) cluster_id: String,
    controller: LocalController,
    log_dir: LogDir,
    topics: RwLock<HashMap<String, Arc<LocalTopic>>>,
    reconcile_lock: Mutex<()>,
    producer_ids: Mutex<ProducerIdBlock>,
    pub(crate) groups: GroupCoordinator,
}

impl Broker {
    /// Opens the data directory and the metadata, registers this node and opens every
    /// partition it leads.
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, BrokerError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BrokerError::Io { path, source }
        };
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let cluster_id = read_or_create_cluster_id(&config)?;
        let controller = LocalController::open(&config.data_dir.join("metadata"))?;
        let log_dir = LogDir::open(&config.data_dir, segment_store::LogConfig::default())?;
        let broker = Arc::new(Self {
            cluster_id,
            controller,
            log_dir,
            topics: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            producer_ids: Mutex::new(ProducerIdBlock::default()),
            groups: GroupCoordinator::with_consumer_config(
                crate::group::state::GroupConfig {
                    min_session_timeout_ms: config.group_min_session_timeout_ms,
                    max_session_timeout_ms: config.group_max_session_timeout_ms,
                    initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                    max_size: usize::MAX,
                },
                crate::group::consumer::ConsumerGroupConfig {
                    session_timeout_ms: config.group_consumer_session_timeout_ms,
                    heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                    max_size: usize::MAX,
                },
            ),
            config,
        });
        broker.register()?;
        broker.reconcile()?;
        broker.load_group_offsets()?;
        Ok(broker)
    }

    fn register(&self) -> Result<(), BrokerError> {
        let (host, port) = self.config.advertise.clone();
        let command = Command::RegisterBroker {
            node_id: self.config.node_id,
            host,
            port,
            rack: self.config.rack.clone(),
        };
        let image = self.image();
        let unchanged = image.broker(self.config.node_id).is_some_and(|b| {
            matches!(&command, Command::RegisterBroker { host, port, rack, .. }
                if &b.host == host && b.port == *port && &b.rack == rack)
        });
        if !unchanged {
            self.controller.submit(command)?;
        }
        Ok(())
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The current metadata image.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// Submits a metadata command and brings the local partitions in line with the result.
    pub(crate) fn submit(&self, command: Command) -> Result<Applied, ControllerError> {
        let applied = self.controller.submit(command)?;
        if let Err(error) = self.reconcile() {
            tracing::error!(%error, "opening partitions after a metadata change failed");
        }
        Ok(applied)
    }

    /// The topic's partitions led here, by name.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<LocalTopic>> {
        self.topics.read().get(name).cloned()
    }

    /// One partition led here.
    pub(crate) fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let topic = self.topic(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i).cloned())
    }

    /// Topic settings as the broker defaults and the topic's own configs make them.
    pub(crate) fn topic_settings(&self, topic: &TopicMeta) -> TopicSettings {
        TopicSettings::from_effective(&topic_config::effective(
            &self.config.topic_defaults,
            &topic.configs,
        ))
    }

    /// Opens logs for new partitions, drops deleted topics and applies config changes.
    pub(crate) fn reconcile(&self) -> Result<(), BrokerError> {
        let _guard = self.reconcile_lock.lock();
        let image = self.image();
        let node = self.config.node_id;
        let mut next: HashMap<String, Arc<LocalTopic>> = HashMap::new();
        let current = self.topics.read().clone();
        for meta in image.topics() {
            let settings = self.topic_settings(meta);
            let existing = current
                .get(&meta.name)
                .filter(|t| t.topic_id == meta.topic_id);
            let mut partitions = Vec::with_capacity(meta.partitions.len());
            for p in &meta.partitions {
                if !p.replicas.contains(&node) {
                    continue;
                }
                let found = existing
                    .and_then(|t| t.partitions.get(p.partition as usize))
                    .cloned();
                let partition = match found {
                    Some(partition) => {
                        partition.update_settings(settings.clone());
                        partition.set_leader_epoch(p.leader_epoch);
                        partition
                    }
                    None => {
                        let tp = TopicPartition {
                            topic: meta.name.clone(),
                            partition: p.partition,
                        };
                        let log = self.log_dir.get_or_create(&tp, settings.log.clone())?;
                        log.set_config(settings.log.clone());
                        Arc::new(Partition::new(
                            meta.name.clone(),
                            p.partition,
                            log,
                            settings.clone(),
                            p.leader_epoch,
                        )?)
                    }
                };
                partitions.push(partition);
            }
            next.insert(
                meta.name.clone(),
                Arc::new(LocalTopic {
                    topic_id: meta.topic_id,
                    partitions,
                }),
            );
        }
        // Logs of topics that are gone, or were deleted and recreated under a new id.
        for (name, topic) in &current {
            let kept = next.get(name).is_some_and(|t| t.topic_id == topic.topic_id);
            if !kept {
                for p in &topic.partitions {
                    let tp = TopicPartition {
                        topic: name.clone(),
                        partition: p.index,
                    };
                    self.log_dir.delete(&tp)?;
                }
            }
        }
        // Logs on disk that the metadata no longer knows (deleted while this node was down).
        for (tp, _) in self.log_dir.logs() {
            let known = next
                .get(&tp.topic)
                .is_some_and(|t| t.partitions.iter().any(|p| p.index == tp.partition));
            if !known {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting log of a removed partition");
                self.log_dir.delete(&tp)?;
            }
        }
        *self.topics.write() = next;
        Ok(())
    }

    /// Replays the `__consumer_offsets` partitions led here into the group coordinator.
    fn load_group_offsets(&self) -> Result<(), BrokerError> {
        let Some(topic) = self.topic(OFFSETS_TOPIC) else {
            return Ok(());
        };
        let mut count = 0usize;
        for p in &topic.partitions {
            let mut offset = p.log.log_start_offset();
            let end = p.log.log_end_offset();
            while offset < end {
                let read = p.log.read(offset, 16 << 20, end, true)?;
                let Some(last) = last_offset_in(&read.records) else {
                    break;
                };
                for (key, value) in records::decode_batches(&read.records) {
                    if let Some(record) = records::decode(&key, value.as_ref()) {
                        self.groups.replay(record);
                        count += 1;
                    }
                }
                offset = last + 1;
            }
        }
        tracing::info!(records = count, "group offsets loaded");
        Ok(())
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub(crate) fn ensure_offsets_topic(&self) -> Result<Arc<LocalTopic>, ControllerError> {
        if let Some(topic) = self.topic(OFFSETS_TOPIC) {
            return Ok(topic);
        }
        let image = self.image();
        let brokers: Vec<_> = image.brokers().cloned().collect();
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
        match self.submit(command) {
            Ok(_)
            | Err(ControllerError::Rejected(controller::Rejection::TopicAlreadyExists(_))) => {}
            Err(e) => return Err(e),
        }
        self.topic(OFFSETS_TOPIC).ok_or_else(|| {
            ControllerError::Rejected(controller::Rejection::UnknownTopic(
                OFFSETS_TOPIC.to_owned(),
            ))
        })
    }

    /// The `__consumer_offsets` partition of a group.
    pub(crate) fn offsets_partition(&self, group: &str) -> Result<Arc<Partition>, ControllerError> {
        let topic = self.ensure_offsets_topic()?;
        let index = records::partition_for(group, topic.partitions.len() as i32);
        Ok(Arc::clone(&topic.partitions[index as usize]))
    }

    /// Hands out a producer id, reserving a new block from the controller when needed.
    pub(crate) fn next_producer_id(&self) -> Result<i64, ControllerError> {
        let mut block = self.producer_ids.lock();
        if block.next >= block.end {
            let applied = self.controller.submit(Command::AllocateProducerIds {
                broker_id: self.config.node_id,
                count: PRODUCER_ID_BLOCK,
            })?;
            if let Applied::ProducerIds { first, count } = applied {
                *block = ProducerIdBlock {
                    next: first,
                    end: first + count,
                };
            }
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Every partition led here.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Runs retention, producer-state snapshots and group timers until the process ends.
    pub fn spawn_background_tasks(self: &Arc<Self>) {
        let groups = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(crate::group::TICK);
            loop {
                ticker.tick().await;
                groups.groups.tick();
            }
        });
        let cleaner = Arc::clone(self);
        let backoff = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(backoff);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let cleaner = Arc::clone(&cleaner);
                let _ = tokio::task::spawn_blocking(move || cleaner.compact_logs()).await;
            }
        });
        let broker = Arc::clone(self);
        let interval = Duration::from_millis(self.config.retention_check_interval_ms);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let broker = Arc::clone(&broker);
                let _ = tokio::task::spawn_blocking(move || broker.housekeeping()).await;
            }
        });
    }

    /// One log-cleaner pass: compacts every `cleanup.policy=compact` log.
    fn compact_logs(&self) {
        match self.log_dir.compact_all(now_ms()) {
            Ok(stats) if stats.records_before != stats.records_after => {
                tracing::info!(
                    segments = stats.segments,
                    records_before = stats.records_before,
                    records_after = stats.records_after,
                    "compacted logs"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "log compaction failed"),
        }
    }

    fn housekeeping(&self) {
        let now = now_ms();
        for p in self.all_partitions() {
            match p.log.enforce_retention(now) {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(topic = %p.topic, partition = p.index, deleted, "retention deleted segments")
                }
                Err(error) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, %error, "retention failed")
                }
            }
            if let Err(error) = p.snapshot_producer_state() {
                tracing::warn!(topic = %p.topic, partition = p.index, %error, "producer state snapshot failed");
            }
        }
        self.expire_group_offsets(now);
        if let Err(error) = self.log_dir.checkpoint() {
            tracing::warn!(%error, "writing checkpoints failed");
        }
    }

    /// Writes tombstones for offsets past `offsets.retention.minutes` and forgets them.
    fn expire_group_offsets(&self, now: i64) {
        let retention_ms = self.config.offsets_retention_minutes.saturating_mul(60_000);
        for (group, partitions) in self.groups.expired_offsets(now, retention_ms) {
            let entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = partitions
                .iter()
                .map(|(t, p)| (records::offset_key(&group, t, *p), None))
                .collect();
            let written = self
                .offsets_partition(&group)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    p.append(&records::batch(&entries, now), -1, now)
                        .map_err(|e| e.to_string())
                });
            match written {
                Ok(_) => {
                    tracing::info!(group = %group, partitions = partitions.len(), "expired committed offsets");
                    self.groups.remove_offsets(&group, &partitions);
                }
                Err(error) => tracing::warn!(group = %group, %error, "expiring offsets failed"),
            }
        }
    }

    /// Flushes every log, saves producer state and marks the shutdown clean.
    pub fn shutdown(&self) -> Result<(), BrokerError> {
        for p in self.all_partitions() {
            if let Err(error) = p.snapshot_producer_state() {
                tracing::warn!(topic = %p.topic, partition = p.index, %error, "producer state snapshot failed");
            }
        }
        self.log_dir.shutdown()?;
        Ok(())
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

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Kafka keeps `cluster.id` in `meta.properties`; so do we, created on first start.
fn read_or_create_cluster_id(config: &BrokerConfig) -> Result<String, BrokerError> {
    let path = config.data_dir.join("meta.properties");
    let io = |source| BrokerError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props: BTreeMap<&str, &str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            if let Some(id) = props.get("cluster.id") {
                return Ok((*id).to_owned());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let id = base64_uuid(Uuid::new_v4());
    let text = format!("version=1\ncluster.id={id}\nnode.id={}\n", config.node_id);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(id)
}

/// Kafka prints cluster ids as URL-safe base64 of a UUID, without padding.
fn base64_uuid(id: Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

//! The broker's shared state: its configuration, the metadata controller, the data directory
//! and the partitions this node leads, kept in step with the metadata image.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller::{
    Applied, BrokerMeta, Command, Controller, ControllerError, MetadataImage, TopicMeta,
};
use parking_lot::{Mutex, RwLock};
use segment_store::{LogDir, TopicPartition};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::group::{records, GroupCoordinator, OFFSETS_TOPIC};
use crate::partition::Partition;
use crate::replication::{FetcherConfig, ReplicaFetchers};
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

/// One topic as this node serves it.
#[derive(Debug)]
pub(crate) struct LocalTopic {
    pub(crate) topic_id: Uuid,
    /// The metadata this was built from (unchanged metadata is the same `Arc`).
    meta: Arc<TopicMeta>,
    /// By partition index: the partition when this node hosts a replica of it.
    replicas: Vec<Option<Arc<Partition>>>,
    /// By partition index: whether this node leads it.
    leading: Vec<bool>,
}

impl LocalTopic {
    /// Partition `index` when this node leads it; otherwise Kafka's error code:
    /// `NOT_LEADER_OR_FOLLOWER` for a partition led elsewhere, `UNKNOWN_TOPIC_OR_PARTITION`
    /// for one that does not exist.
    pub(crate) fn led(&self, index: i32) -> Result<&Arc<Partition>, i16> {
        use kafka_protocol::error::ResponseError;
        let Ok(i) = usize::try_from(index) else {
            return Err(ResponseError::UnknownTopicOrPartition.code());
        };
        match (self.replicas.get(i), self.leading.get(i)) {
            (Some(Some(partition)), Some(true)) => Ok(partition),
            (Some(_), _) => Err(ResponseError::NotLeaderOrFollower.code()),
            (None, _) => Err(ResponseError::UnknownTopicOrPartition.code()),
        }
    }

    /// The partitions led here.
    pub(crate) fn led_partitions(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.replicas
            .iter()
            .zip(&self.leading)
            .filter_map(|(p, leading)| p.as_ref().filter(|_| *leading))
    }

    /// Every partition with a replica here.
    fn hosted(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.replicas.iter().flatten()
    }
}

/// Why this node cannot write a group's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotCoordinator {
    /// `__consumer_offsets` does not exist yet, or its partition has no leader.
    #[error("the group coordinator is not available")]
    Unavailable,
    /// Another broker leads the group's `__consumer_offsets` partition.
    #[error("this broker is not the group's coordinator")]
    Elsewhere,
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
    controller: Controller,
    log_dir: LogDir,
    topics: RwLock<HashMap<String, Arc<LocalTopic>>>,
    reconcile_lock: Mutex<()>,
    /// Whether the data directory was checked for logs the metadata no longer knows.
    scanned_disk: std::sync::atomic::AtomicBool,
    /// Whether the image holds everything committed before this process started (only
    /// then may a log missing from it be deleted).
    caught_up: std::sync::atomic::AtomicBool,
    /// Set once the partitions reflect the image this broker registered in (leaderships
    /// it regained by registering included): only then does it answer clients.
    ready: tokio::sync::watch::Sender<bool>,
    producer_ids: tokio::sync::Mutex<ProducerIdBlock>,
    pub(crate) groups: GroupCoordinator,
    /// Pull the partitions this node follows from their leaders.
    fetchers: ReplicaFetchers,
    /// `__consumer_offsets` partitions led here whose groups are still being replayed.
    loading_offsets: Mutex<std::collections::HashSet<i32>>,
    /// Per-API request timings.
    request_metrics: crate::metrics::RequestMetrics,
}

impl Broker {
    /// Opens the data directory and every partition the current metadata places here.
    /// Registration with the quorum and following later metadata are started by
    /// [`Broker::spawn_background_tasks`].
    pub fn open(config: BrokerConfig, controller: Controller) -> Result<Arc<Self>, BrokerError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BrokerError::Io { path, source }
        };
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let cluster_id = read_or_create_cluster_id(&config, controller.voters())?;
        let log_dir = LogDir::open(&config.data_dir, segment_store::LogConfig::default())?;
        let broker = Arc::new(Self {
            cluster_id,
            controller,
            log_dir,
            topics: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            scanned_disk: std::sync::atomic::AtomicBool::new(false),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            ready: tokio::sync::watch::channel(false).0,
            producer_ids: tokio::sync::Mutex::new(ProducerIdBlock::default()),
            loading_offsets: Mutex::new(std::collections::HashSet::new()),
            request_metrics: crate::metrics::RequestMetrics::new(
                crate::api::SUPPORTED.iter().map(|(key, _, _)| *key),
            ),
            fetchers: ReplicaFetchers::new(FetcherConfig {
                node_id: config.node_id,
                max_wait: Duration::from_millis(config.replica_fetch_wait_max_ms),
                partition_max_bytes: config.replica_fetch_max_bytes,
                response_max_bytes: config.replica_fetch_response_max_bytes,
                backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
            }),
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
        broker.reconcile()?;
        Ok(broker)
    }

    /// Resolves once this broker registered and its partitions reflect the metadata it
    /// registered in, so what it answers is caught up.
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Per-API request timings (queue, handling, send).
    pub fn request_metrics(&self) -> &crate::metrics::RequestMetrics {
        &self.request_metrics
    }

    /// The metadata quorum handle.
    pub fn controller(&self) -> &Controller {
        &self.controller
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
    pub(crate) async fn submit(&self, command: Command) -> Result<Applied, ControllerError> {
        let applied = self.controller.submit(command).await?;
        if let Err(error) = self.reconcile() {
            tracing::error!(%error, "opening partitions after a metadata change failed");
        }
        Ok(applied)
    }

    /// The topic as this node serves it, by name.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<LocalTopic>> {
        self.topics.read().get(name).cloned()
    }

    /// One partition led here, or the Kafka error code saying why not
    /// (`UNKNOWN_TOPIC_OR_PARTITION`, `NOT_LEADER_OR_FOLLOWER`).
    pub(crate) fn partition(&self, topic: &str, index: i32) -> Result<Arc<Partition>, i16> {
        use kafka_protocol::error::ResponseError;
        self.topic(topic)
            .ok_or(ResponseError::UnknownTopicOrPartition.code())?
            .led(index)
            .cloned()
    }

    /// The controller id clients see: the metadata leader when it is a live broker,
    /// otherwise the lowest live broker (any broker forwards controller requests, as in
    /// KRaft where clients never reach the quorum directly). -1 when no broker is live.
    pub(crate) fn controller_id(&self) -> i32 {
        let image = self.image();
        let live = |id: &i32| image.broker(*id).is_some_and(|b| !b.fenced);
        match self.controller.leader_id().filter(live) {
            Some(leader) => leader,
            None => image.live_brokers().next().map_or(-1, |b| b.node_id),
        }
    }

    /// Live brokers, the ones Metadata lists and new replicas go to.
    pub(crate) fn live_brokers(&self) -> Vec<BrokerMeta> {
        self.image().live_brokers().cloned().collect()
    }

    /// Topic settings as the broker defaults and the topic's own configs make them.
    pub(crate) fn topic_settings(&self, topic: &TopicMeta) -> TopicSettings {
        TopicSettings::from_effective(&topic_config::effective(
            &self.config.topic_defaults,
            &topic.configs,
        ))
    }

    /// Opens logs for new replicas, drops deleted topics, applies config changes and
    /// leadership, and replays `__consumer_offsets` partitions that became led here.
    pub(crate) fn reconcile(&self) -> Result<(), BrokerError> {
        let _guard = self.reconcile_lock.lock();
        let image = self.image();
        // Only topics whose metadata changed are rebuilt: unchanged ones share their
        // `Arc<TopicMeta>` with the image the local topic was built from.
        // Topics that are gone, or were deleted and recreated under a new id: their logs
        // go first, so that a recreated topic starts from empty logs.
        let dropped: Vec<(String, Arc<LocalTopic>)> = self
            .topics
            .read()
            .iter()
            .filter(|(name, topic)| {
                image
                    .topic(name)
                    .is_none_or(|m| m.topic_id != topic.topic_id)
            })
            .map(|(name, topic)| (name.clone(), Arc::clone(topic)))
            .collect();
        for (name, topic) in &dropped {
            for p in topic.hosted() {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p.index,
                };
                self.log_dir.delete(&tp)?;
            }
        }
        let mut rebuilt: Vec<Arc<LocalTopic>> = Vec::new();
        let mut moved_away: Vec<TopicPartition> = Vec::new();
        {
            let current = self.topics.read();
            for meta in image.shared_topics() {
                let existing = current
                    .get(&meta.name)
                    .filter(|t| t.topic_id == meta.topic_id);
                if existing.is_some_and(|t| Arc::ptr_eq(&t.meta, meta)) {
                    continue;
                }
                let topic = self.local_topic(meta, existing.map(Arc::as_ref))?;
                // Replicas moved off this node by a reassignment.
                if let Some(existing) = existing {
                    moved_away.extend(
                        existing
                            .hosted()
                            .filter(|p| {
                                topic
                                    .replicas
                                    .get(p.index as usize)
                                    .is_none_or(Option::is_none)
                            })
                            .map(|p| TopicPartition {
                                topic: meta.name.clone(),
                                partition: p.index,
                            }),
                    );
                }
                rebuilt.push(Arc::new(topic));
            }
        }
        let gained = {
            let mut topics = self.topics.write();
            for (name, _) in &dropped {
                topics.remove(name);
            }
            let mut gained = Vec::new();
            for topic in rebuilt {
                let name = topic.meta.name.clone();
                if name == OFFSETS_TOPIC {
                    let before = topics.get(&name).cloned();
                    let was_led = |p: &Arc<Partition>| {
                        before
                            .as_ref()
                            .is_some_and(|t| t.led(p.index).is_ok_and(|old| Arc::ptr_eq(old, p)))
                    };
                    gained.extend(topic.led_partitions().filter(|p| !was_led(p)).cloned());
                    self.loading_offsets
                        .lock()
                        .extend(gained.iter().map(|p| p.index));
                    if let Some(before) = &before {
                        let lost: Vec<i32> = before
                            .led_partitions()
                            .filter(|p| topic.led(p.index).is_err())
                            .map(|p| p.index)
                            .collect();
                        if !lost.is_empty() {
                            let count = topic.replicas.len() as i32;
                            self.groups.unload(|group| {
                                lost.contains(&records::partition_for(group, count))
                            });
                            tracing::info!(partitions = ?lost, "group coordination moved to other brokers");
                        }
                    }
                }
                topics.insert(name, topic);
            }
            gained
        };
        for tp in &moved_away {
            tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting a replica moved to other brokers");
            self.log_dir.delete(tp)?;
        }
        self.delete_orphaned_logs()?;
        let loaded = self.load_group_offsets(&gained);
        {
            let mut loading = self.loading_offsets.lock();
            for p in &gained {
                loading.remove(&p.index);
            }
        }
        loaded?;
        self.follow_leaders(&image);
        Ok(())
    }

    /// Points the replica fetchers at the leaders of the partitions this node follows.
    fn follow_leaders(&self, image: &MetadataImage) {
        let mut wanted: HashMap<i32, (String, Vec<Arc<Partition>>)> = HashMap::new();
        for topic in self.topics.read().values() {
            for p in topic.hosted() {
                let (leader, _) = p.leader();
                if leader < 0 || leader == self.config.node_id {
                    continue;
                }
                let Some(broker) = image.broker(leader) else {
                    continue;
                };
                wanted
                    .entry(leader)
                    .or_insert_with(|| (format!("{}:{}", broker.host, broker.port), Vec::new()))
                    .1
                    .push(Arc::clone(p));
            }
        }
        for (_, partitions) in wanted.values_mut() {
            partitions.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
        }
        self.fetchers.update(wanted);
    }

    /// Topic `meta` as this node serves it: partitions with a replica here are opened
    /// (their logs created when new), reusing `existing`'s partitions.
    fn local_topic(
        &self,
        meta: &Arc<TopicMeta>,
        existing: Option<&LocalTopic>,
    ) -> Result<LocalTopic, BrokerError> {
        let node = self.config.node_id;
        let settings = self.topic_settings(meta);
        let mut replicas = Vec::with_capacity(meta.partitions.len());
        let mut leading = Vec::with_capacity(meta.partitions.len());
        for p in &meta.partitions {
            leading.push(p.leader == node);
            if !p.replicas.contains(&node) {
                replicas.push(None);
                continue;
            }
            let found =
                existing.and_then(|t| t.replicas.get(p.partition as usize).cloned().flatten());
            let partition = match found {
                Some(partition) => {
                    partition.update_settings(settings.clone());
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
                        node,
                    )?)
                }
            };
            partition.apply_metadata(p, now_ms());
            replicas.push(Some(partition));
        }
        Ok(LocalTopic {
            topic_id: meta.topic_id,
            meta: Arc::clone(meta),
            replicas,
            leading,
        })
    }

    /// Once the metadata has caught up after start-up: deletes logs on disk that it no
    /// longer places here (their partitions were deleted or moved while this node was down).
    fn delete_orphaned_logs(&self) -> Result<(), BrokerError> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.caught_up.load(Relaxed) || self.scanned_disk.swap(true, Relaxed) {
            return Ok(());
        }
        let topics = self.topics.read().clone();
        for (tp, _) in self.log_dir.logs() {
            let known = topics
                .get(&tp.topic)
                .is_some_and(|t| t.hosted().any(|p| p.index == tp.partition));
            if !known {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting log of a removed partition");
                self.log_dir.delete(&tp)?;
            }
        }
        Ok(())
    }

    /// Replays `__consumer_offsets` partitions that became led here into the group
    /// coordinator.
    fn load_group_offsets(&self, partitions: &[Arc<Partition>]) -> Result<(), BrokerError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut count = 0usize;
        for p in partitions {
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
        tracing::info!(
            partitions = partitions.len(),
            records = count,
            "group offsets loaded"
        );
        Ok(())
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub(crate) async fn ensure_offsets_topic(&self) -> Result<(), ControllerError> {
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
    /// partition (`None` while the topic does not exist or that partition has no leader).
    pub(crate) fn coordinator_for(&self, group: &str) -> Option<BrokerMeta> {
        let image = self.image();
        let topic = image.topic(OFFSETS_TOPIC)?;
        let index = records::partition_for(group, topic.partitions.len() as i32);
        let leader = topic.partition(index)?.leader;
        image.broker(leader).filter(|b| !b.fenced).cloned()
    }

    /// The `__consumer_offsets` partition of a group, when this node leads it.
    pub(crate) fn offsets_partition(&self, group: &str) -> Result<Arc<Partition>, NotCoordinator> {
        let topic = self
            .topic(OFFSETS_TOPIC)
            .ok_or(NotCoordinator::Unavailable)?;
        let index = records::partition_for(group, topic.replicas.len() as i32);
        topic
            .led(index)
            .cloned()
            .map_err(|_| NotCoordinator::Elsewhere)
    }

    /// `NOT_COORDINATOR` when another broker leads `group`'s `__consumer_offsets`
    /// partition (the group moved there; its client must find it again), and
    /// `COORDINATOR_LOAD_IN_PROGRESS` while this node replays that partition.
    pub(crate) fn coordinator_error(&self, group: &str) -> Option<i16> {
        use kafka_protocol::error::ResponseError;
        match self.offsets_partition(group) {
            Err(NotCoordinator::Elsewhere) => Some(ResponseError::NotCoordinator.code()),
            Ok(p) if self.loading_offsets.lock().contains(&p.index) => {
                Some(ResponseError::CoordinatorLoadInProgress.code())
            }
            _ => None,
        }
    }

    /// Hands out a producer id, reserving a new block from the controller when needed.
    pub(crate) async fn next_producer_id(&self) -> Result<i64, ControllerError> {
        let mut block = self.producer_ids.lock().await;
        if block.next >= block.end {
            let applied = self
                .controller
                .submit(Command::AllocateProducerIds {
                    broker_id: self.config.node_id,
                    count: PRODUCER_ID_BLOCK,
                })
                .await?;
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

    /// Every partition with a replica here.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.hosted().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Registers this broker with the quorum (and keeps its lease), follows metadata
    /// changes, and runs retention, producer-state snapshots, the log cleaner and group
    /// timers until the process ends.
    pub fn spawn_background_tasks(self: &Arc<Self>) {
        let (host, port) = self.config.advertise.clone();
        self.controller
            .start_broker_lease(controller::BrokerRegistration {
                host,
                port,
                rack: self.config.rack.clone(),
            });
        let registered = Arc::clone(self);
        tokio::spawn(async move {
            registered.controller.wait_registered().await;
            registered
                .caught_up
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let broker = Arc::clone(&registered);
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || broker.reconcile()).await {
                tracing::error!(%error, "applying the caught-up metadata failed");
            }
            registered.ready.send_replace(true);
        });
        let follower = Arc::clone(self);
        let mut images = self.controller.subscribe();
        tokio::spawn(async move {
            while images.changed().await.is_ok() {
                images.borrow_and_update();
                let broker = Arc::clone(&follower);
                let reconciled = tokio::task::spawn_blocking(move || broker.reconcile()).await;
                if let Ok(Err(error)) = reconciled {
                    tracing::error!(%error, "applying a metadata change failed");
                }
            }
        });
        self.fetchers.start(tokio::runtime::Handle::current());
        let lag_ms = self.config.replica_lag_time_max_ms;
        let isr_period = Duration::from_millis((lag_ms / 2).clamp(10, 250));
        self.every(isr_period, move |broker| async move {
            broker.maintain_isr(lag_ms as i64);
        });
        if self.config.auto_leader_rebalance_enable {
            let period = Duration::from_secs(self.config.leader_imbalance_check_interval_seconds);
            self.every(period, |broker| async move {
                broker.reclaim_preferred_leadership().await;
            });
        }
        self.every(crate::group::TICK, |broker| async move {
            broker.groups.tick();
        });
        let backoff = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        self.every(backoff, |broker| async move {
            let _ = tokio::task::spawn_blocking(move || broker.compact_logs()).await;
        });
        let interval = Duration::from_millis(self.config.retention_check_interval_ms);
        self.every(interval, |broker| async move {
            let _ = tokio::task::spawn_blocking(move || broker.housekeeping()).await;
        });
    }

    /// Runs `work` every `period`, the first time one period from now, until the process
    /// ends; a run that overlaps the next tick delays it.
    fn every<F, Fut>(self: &Arc<Self>, period: Duration, work: F)
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let broker = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                work(Arc::clone(&broker)).await;
            }
        });
    }

    /// Submits the ISR changes the partitions led here call for (laggards out, caught-up
    /// followers in), each on its own task.
    fn maintain_isr(self: &Arc<Self>, lag_ms: i64) {
        let now = now_ms();
        let image = self.image();
        let live = |id: i32| image.broker(id).is_some_and(|b| !b.fenced);
        let led: Vec<Arc<Partition>> = self
            .topics
            .read()
            .values()
            .flat_map(|t| t.led_partitions().cloned().collect::<Vec<_>>())
            .collect();
        for p in led {
            let Some((isr, leader_epoch, partition_epoch)) =
                p.propose_isr_change(now, lag_ms, live)
            else {
                continue;
            };
            tracing::info!(topic = %p.topic, partition = p.index, ?isr, "changing the ISR");
            let command = Command::AlterPartition {
                topic: p.topic.clone(),
                partition: p.index,
                leader: self.config.node_id,
                leader_epoch,
                partition_epoch,
                isr,
            };
            let broker = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = broker.submit(command).await {
                    tracing::info!(topic = %p.topic, partition = p.index, %error, "ISR change refused");
                    p.abandon_isr_change();
                }
            });
        }
    }

    /// Asks for the leadership of partitions whose preferred replica is this node, where it
    /// is in sync but another replica leads (after this node restarted, say).
    async fn reclaim_preferred_leadership(&self) {
        let node = self.config.node_id;
        let image = self.image();
        if image.broker(node).is_none_or(|b| b.fenced) {
            return;
        }
        let partitions: Vec<(String, i32)> = image
            .shared_topics()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.replicas[0] == node && p.leader != node && p.isr.contains(&node))
                    .map(|p| (t.name.clone(), p.partition))
                    .collect::<Vec<_>>()
            })
            .collect();
        if partitions.is_empty() {
            return;
        }
        let count = partitions.len();
        match self
            .submit(Command::ElectLeaders {
                partitions,
                election: controller::Election::Preferred,
            })
            .await
        {
            Ok(_) => tracing::info!(partitions = count, "took back preferred leaderships"),
            Err(error) => tracing::warn!(%error, "preferred leader election failed"),
        }
    }

    /// Kafka's controlled shutdown: stops renewing this broker's lease and fences it, so
    /// every partition it leads moves to another in-sync replica and it leaves every ISR
    /// before the process stops. Bounded by `limit`; a no-op with
    /// `controlled.shutdown.enable=false`.
    pub async fn controlled_shutdown(&self, limit: Duration) {
        if !self.config.controlled_shutdown_enable {
            return;
        }
        let node_id = self.config.node_id;
        self.controller.stop_broker_lease();
        let fence = self.submit(Command::FenceBroker { node_id });
        match tokio::time::timeout(limit, fence).await {
            Ok(Ok(_)) => tracing::info!("controlled shutdown: leaderships handed over"),
            Ok(Err(error)) => tracing::warn!(%error, "controlled shutdown failed"),
            Err(_) => tracing::warn!("controlled shutdown timed out"),
        }
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
                    let append = p.append(records::batch(&entries, now), -1);
                    futures::executor::block_on(append).map_err(|e| e.to_string())
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
        self.fetchers.stop();
        self.request_metrics.log_summary();
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

/// Kafka keeps `cluster.id` in `meta.properties`; so do we, written on first start. Every
/// node of a cluster derives the same id from the voter set, so they agree without a
/// separate formatting step.
fn read_or_create_cluster_id(
    config: &BrokerConfig,
    voters: &BTreeMap<i32, String>,
) -> Result<String, BrokerError> {
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
    let voters: Vec<String> = voters.iter().map(|(id, a)| format!("{id}@{a}")).collect();
    let name = format!("strata-cluster:{}", voters.join(","));
    let id = base64_uuid(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()));
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

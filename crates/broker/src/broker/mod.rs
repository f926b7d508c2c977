//! The broker's shared state: its configuration, the metadata controller, the data directory
//! and the partitions this node leads, kept in step with the metadata image
//! ([`reconcile`]); the periodic tasks ([`tasks`]); the wiring of the coordinators
//! ([`coordination`]).

mod coordination;
mod reconcile;
mod tasks;
mod transactions;

pub(crate) use transactions::MarkerSpec;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller::{
    Applied, BrokerMeta, Command, Controller, ControllerError, MetadataImage, TopicMeta,
};
use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use segment_store::LogDir;
use uuid::Uuid;

use crate::config::dynamic::Layers;
use crate::config::BrokerConfig;
use crate::partition::Partition;
use crate::replication::{FetcherConfig, ReplicaFetchers};
use crate::topic_config::{self, TopicSettings};
use coordinator::txn::{TxnConfig, TxnCoordinator};
use coordinator::GroupCoordinator;

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
    pub(crate) fn led(&self, index: i32) -> Result<&Arc<Partition>, ResponseError> {
        let Ok(i) = usize::try_from(index) else {
            return Err(ResponseError::UnknownTopicOrPartition);
        };
        match (self.replicas.get(i), self.leading.get(i)) {
            (Some(Some(partition)), Some(true)) => Ok(partition),
            (Some(_), _) => Err(ResponseError::NotLeaderOrFollower),
            (None, _) => Err(ResponseError::UnknownTopicOrPartition),
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

/// The dynamic broker configs of one image that apply to this broker.
#[derive(Debug, Default, Clone, PartialEq)]
struct DynamicConfigs {
    cluster_default: BTreeMap<String, String>,
    per_broker: BTreeMap<String, String>,
}

/// The latest request to build TLS listeners again: how many were made, and the
/// listeners (lower case) the latest names.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsReload {
    pub(crate) count: u64,
    pub(crate) listeners: Vec<String>,
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
    /// The authorizer `authorizer.class.name` turned on, if any.
    pub(crate) authorizer: Option<crate::authorizer::Authorizer>,
    pub(crate) cluster_id: String,
    controller: Controller,
    log_dir: LogDir,
    topics: RwLock<HashMap<String, Arc<LocalTopic>>>,
    reconcile_lock: Mutex<()>,
    /// The dynamic broker configs (cluster default, this broker's) the local topics were
    /// last built with: when they change, every topic's settings are rebuilt.
    applied_dynamic: Mutex<DynamicConfigs>,
    /// Whether the data directory was checked for logs the metadata no longer knows.
    scanned_disk: std::sync::atomic::AtomicBool,
    /// Whether the image holds everything committed before this process started (only
    /// then may a log missing from it be deleted).
    caught_up: std::sync::atomic::AtomicBool,
    /// Set once the partitions reflect the image this broker registered in (leaderships
    /// it regained by registering included): only then does it answer clients.
    ready: tokio::sync::watch::Sender<bool>,
    /// Requests to build TLS listeners again now (a count and the listeners' names), sent
    /// when their stores are altered for this broker (`tls_reload.rs`).
    tls_reload: tokio::sync::watch::Sender<TlsReload>,
    /// What each TLS listener (by lower-case name) serves new connections now.
    listener_tls: std::collections::BTreeMap<String, Arc<crate::server::CurrentTls>>,
    producer_ids: tokio::sync::Mutex<ProducerIdBlock>,
    /// The group coordinator of the `__consumer_offsets` partitions led here.
    pub(crate) groups: Arc<GroupCoordinator>,
    /// The transaction coordinator of the `__transaction_state` partitions led here.
    pub(crate) txns: Arc<TxnCoordinator>,
    /// Pull the partitions this node follows from their leaders.
    fetchers: ReplicaFetchers,
    /// How this broker connects to other brokers' inter-broker listener.
    pub(crate) inter_broker: crate::inter_broker::InterBrokerClient,
    /// Per-API request timings.
    request_metrics: crate::metrics::RequestMetrics,
    /// Per-topic byte and record counters (the partitions hold their topic's entry).
    pub(crate) topic_stats: crate::metrics::TopicStatsRegistry,
    /// Connections of the Kafka listener.
    pub(crate) connection_stats: Arc<crate::metrics::ConnectionStats>,
    /// The connection limits in force (the listener follows them).
    pub(crate) connection_limits: tokio::sync::watch::Sender<crate::server::ConnectionLimits>,
    /// Client quota rates (produce and fetch bytes, request time).
    pub(crate) quotas: crate::quota::ClientQuotas,
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
        let cluster_id =
            read_or_create_cluster_id(&config, &controller.voters(), controller.directory_id())?;
        let log_dir = LogDir::open(&config.data_dir, segment_store::LogConfig::default())?;
        let inter_broker = crate::inter_broker::InterBrokerClient::new(
            config.inter_broker_tls.clone(),
            config.inter_broker_sasl.clone(),
        );
        let broker = Arc::new_cyclic(|weak| Self {
            txns: Arc::new(TxnCoordinator::new(
                TxnConfig {
                    max_timeout_ms: config.transaction_max_timeout_ms,
                    id_expiration_ms: config.transactional_id_expiration_ms,
                },
                Arc::new(transactions::BrokerMarkers(weak.clone())),
            )),
            authorizer: config.authorizer(),
            cluster_id,
            controller,
            log_dir,
            topics: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            applied_dynamic: Mutex::new(DynamicConfigs::default()),
            scanned_disk: std::sync::atomic::AtomicBool::new(false),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            ready: tokio::sync::watch::channel(false).0,
            tls_reload: tokio::sync::watch::channel(TlsReload::default()).0,
            listener_tls: config
                .listeners
                .iter()
                .filter_map(|l| {
                    let tls = crate::config::ServerTls {
                        config: Arc::clone(l.tls.as_ref()?),
                        certificate: l.tls_certificate.clone()?,
                    };
                    Some((
                        l.name.to_ascii_lowercase(),
                        Arc::new(crate::server::CurrentTls::new(tls)),
                    ))
                })
                .collect(),
            producer_ids: tokio::sync::Mutex::new(ProducerIdBlock::default()),
            request_metrics: crate::metrics::RequestMetrics::new(
                crate::api::SUPPORTED.iter().map(|(key, _, _)| *key),
            ),
            topic_stats: crate::metrics::TopicStatsRegistry::default(),
            quotas: crate::quota::ClientQuotas::new(crate::quota::rate::Window {
                samples: config.quota_window_num,
                window_ms: config.quota_window_size_seconds.saturating_mul(1000),
            }),
            connection_stats: Arc::default(),
            connection_limits: tokio::sync::watch::channel(
                crate::config::dynamic::connection_limits(
                    &config,
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                ),
            )
            .0,
            fetchers: ReplicaFetchers::new(FetcherConfig {
                node_id: config.node_id,
                max_wait: Duration::from_millis(config.replica_fetch_wait_max_ms),
                partition_max_bytes: config.replica_fetch_max_bytes,
                response_max_bytes: config.replica_fetch_response_max_bytes,
                backoff: Duration::from_millis(config.replica_fetch_backoff_ms),
                connector: inter_broker.clone(),
            }),
            inter_broker,
            groups: Arc::new(GroupCoordinator::new(
                coordinator::group::classic::GroupConfig {
                    min_session_timeout_ms: config.group_min_session_timeout_ms,
                    max_session_timeout_ms: config.group_max_session_timeout_ms,
                    initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                    max_size: usize::MAX,
                },
                coordinator::group::consumer::ConsumerGroupConfig {
                    session_timeout_ms: config.group_consumer_session_timeout_ms,
                    heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                    max_size: usize::MAX,
                    migration: config.group_consumer_migration_policy,
                },
            )),
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

    /// A receiver of every metadata image from the current one on.
    pub(crate) fn images(&self) -> tokio::sync::watch::Receiver<Arc<MetadataImage>> {
        self.controller.subscribe()
    }

    /// Asks `listeners` (names in lower case) to read their TLS stores again now, as Kafka
    /// does when a listener's store settings are altered for this broker even when the
    /// paths did not change.
    pub(crate) fn reload_listener_tls(&self, listeners: Vec<String>) {
        self.tls_reload.send_modify(|request| {
            request.count += 1;
            request.listeners = listeners;
        });
    }

    /// What the TLS listener `name` serves new connections now (`None` without TLS).
    pub(crate) fn current_tls(&self, name: &str) -> Option<Arc<crate::server::CurrentTls>> {
        self.listener_tls.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The requests of [`Self::reload_listener_tls`].
    pub(crate) fn tls_reload_requests(&self) -> tokio::sync::watch::Receiver<TlsReload> {
        self.tls_reload.subscribe()
    }

    /// Submits a metadata command and brings the local partitions in line with the result
    /// (on a blocking thread: that opens files and deletes directories).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        command: Command,
    ) -> Result<Applied, ControllerError> {
        let applied = self.controller.submit(command).await?;
        let broker = Arc::clone(self);
        match tokio::task::spawn_blocking(move || broker.reconcile()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "opening partitions after a metadata change failed")
            }
            Err(error) => tracing::error!(%error, "applying a metadata change panicked"),
        }
        Ok(applied)
    }

    /// The topic as this node serves it, by name.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<LocalTopic>> {
        self.topics.read().get(name).cloned()
    }

    /// One partition led here, or the Kafka error code saying why not
    /// (`UNKNOWN_TOPIC_OR_PARTITION`, `NOT_LEADER_OR_FOLLOWER`).
    pub(crate) fn partition(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        self.topic(topic)
            .ok_or(ResponseError::UnknownTopicOrPartition)?
            .led(index)
            .cloned()
    }

    /// The controller id clients see (Metadata, DescribeCluster): this broker while it is
    /// live in the image. Every broker forwards controller requests (CreateTopics,
    /// DeleteTopics, CreatePartitions, AlterConfigs, ElectLeaders, ...) to the metadata quorum
    /// and waits out a leader election itself, so naming itself never sends a client to a
    /// dead node, where naming the quorum's leader would until the election ends and the
    /// client's metadata is refreshed. Otherwise (fenced, not yet registered) the metadata
    /// leader when it is a live broker, else the lowest live broker; -1 when none is live.
    pub(crate) fn controller_id(&self) -> i32 {
        let image = self.image();
        let live = |id: &i32| image.broker(*id).is_some_and(|b| !b.fenced);
        let me = self.config.node_id;
        if live(&me) {
            return me;
        }
        match self.controller.leader_id().filter(live) {
            Some(leader) => leader,
            None => image.live_brokers().next().map_or(-1, |b| b.node_id),
        }
    }

    /// Live brokers, the ones Metadata lists and new replicas go to.
    pub(crate) fn live_brokers(&self) -> Vec<BrokerMeta> {
        self.image().live_brokers().cloned().collect()
    }

    /// Topic settings as the broker defaults (static and the dynamic ones in `image`) and
    /// the topic's own configs make them.
    pub(crate) fn topic_settings(&self, image: &MetadataImage, topic: &TopicMeta) -> TopicSettings {
        TopicSettings::from_effective(&topic_config::effective(
            &self.config_layers(image),
            &topic.configs,
        ))
    }

    /// This broker's config layers under the dynamic broker configs of `image`.
    pub(crate) fn config_layers<'a>(&'a self, image: &'a MetadataImage) -> Layers<'a> {
        Layers::new(&self.config, image)
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

    /// The log directory (`log.dirs`, its first entry).
    pub(crate) fn log_dir(&self) -> &LogDir {
        &self.log_dir
    }

    /// Every partition with a replica here.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.hosted().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Kafka's controlled shutdown: stops renewing this broker's lease and fences it, so
    /// every partition it leads moves to another in-sync replica and it leaves every ISR
    /// before the process stops. Bounded by `limit`; a no-op with
    /// `controlled.shutdown.enable=false`.
    pub async fn controlled_shutdown(self: &Arc<Self>, limit: Duration) {
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

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Kafka keeps `cluster.id` in `meta.properties`; so do we, written on first start. Every
/// node of a cluster derives the same id from the voter set, so they agree without a
/// separate formatting step. A controller's metadata directory id (nil on broker-only nodes)
/// is kept there too as `directory.id`, where Kafka's tools look for it
/// (`kafka-metadata-quorum add-controller`); the file is rewritten when it is missing or stale.
fn read_or_create_cluster_id(
    config: &BrokerConfig,
    voters: &BTreeMap<i32, String>,
    directory_id: Uuid,
) -> Result<String, BrokerError> {
    let path = config.data_dir.join("meta.properties");
    let io = |source| BrokerError::Io {
        path: path.clone(),
        source,
    };
    let directory = (!directory_id.is_nil()).then(|| base64_uuid(directory_id));
    let mut known = None;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props: BTreeMap<&str, &str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            if let Some(id) = props.get("cluster.id") {
                if props.get("directory.id").copied() == directory.as_deref() {
                    return Ok((*id).to_owned());
                }
                known = Some((*id).to_owned());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let id = known.unwrap_or_else(|| {
        let voters: Vec<String> = voters.iter().map(|(id, a)| format!("{id}@{a}")).collect();
        let name = format!("strata-cluster:{}", voters.join(","));
        base64_uuid(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()))
    });
    let mut text = format!("version=1\ncluster.id={id}\nnode.id={}\n", config.node_id);
    if let Some(directory) = directory {
        text.push_str(&format!("directory.id={directory}\n"));
    }
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

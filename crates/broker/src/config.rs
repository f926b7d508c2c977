//! Broker configuration, read from Kafka's own property names.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[macro_use]
mod applied;
mod client_properties;
pub(crate) mod dynamic;
mod known;
mod listeners;
mod live_tls;
mod oauthbearer;
mod principal_mapping;
mod reference;
mod sasl;
mod tls;
mod unserved;

pub use client_properties::client_security;
pub use known::{unknown_properties, UnknownProperty};
pub use listeners::{ListenerConfig, SecurityProtocol};
pub(crate) use live_tls::{fingerprints, Fingerprint, RELOAD_INTERVAL};
pub use live_tls::{watch as watch_tls, LiveTls};
pub use oauthbearer::OAuthBearerSettings;
pub use principal_mapping::{NoMatchingRule, PrincipalMapper, RuleError};
pub use reference::{applied_table_markdown, reference_markdown};
pub use sasl::{Mechanism, SaslSettings};
pub(crate) use tls::principal as tls_principal;
pub use tls::ServerTls;

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The property holds a value of the wrong type or out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// Property name.
        key: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The property names something Strata does not serve yet (a TLS or SASL listener, an
    /// authorizer, ...): starting anyway would silently serve something else than asked.
    #[error("{key}={value}: Strata does not serve {what} yet")]
    Unserved {
        /// Property name.
        key: String,
        /// The value given.
        value: String,
        /// What it asks for.
        what: String,
    },
}

/// Everything a broker needs to start. Defaults follow Apache Kafka's.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `log.dirs` (the first entry is used).
    pub data_dir: PathBuf,
    /// `listeners` with `advertised.listeners` and `listener.security.protocol.map`: at
    /// least one, names unique.
    pub listeners: Vec<ListenerConfig>,
    /// `inter.broker.listener.name`: the listener (one of `listeners`) other brokers fetch
    /// from; its advertised address is this broker's registration.
    pub inter_broker_listener: String,
    /// The client side of the inter-broker listener when it is SSL (its truststore, and its
    /// keystore as the client certificate), used by replica fetchers and other connections
    /// to brokers.
    pub inter_broker_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The SASL mechanism, username and password of this broker's own connections to a SASL
    /// inter-broker listener (`sasl.mechanism.inter.broker.protocol`: PLAIN, SCRAM-SHA-256 or
    /// SCRAM-SHA-512; the `username` and `password` of the listener's JAAS line for it).
    pub inter_broker_sasl: Option<client::SaslCredentials>,
    /// Mutual TLS on the controller port, when the controller listener (the first of
    /// `controller.listener.names`) maps to SSL in `listener.security.protocol.map`; its
    /// settings are `listener.name.<controller listener>.ssl.*`.
    pub controller_tls: Option<controller::ControllerTls>,
    /// The stores behind `controller_tls` and `inter_broker_tls`, which [`watch_tls`] reads
    /// again when their files change.
    pub live_tls: Vec<std::sync::Arc<LiveTls>>,
    /// `controller.allow.plaintext` (Strata's own): serve the controller port without TLS on
    /// an address other than loopback. Default false.
    pub controller_allow_plaintext: bool,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `num.partitions`: partitions of an auto-created topic or a CreateTopics asking for -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`: a larger frame closes the connection.
    pub socket_request_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`: pause between passes of the log cleaner (compaction).
    pub log_cleaner_backoff_ms: u64,
    /// `queued.max.requests` per connection: requests read ahead of their responses.
    pub max_in_flight_per_connection: usize,
    /// `queued.max.request.bytes`: request bytes read off sockets and not yet handled,
    /// broker-wide; `None` (a value of 0 or less, Kafka's default -1) for no bound. Default
    /// 100 MiB (`socket.request.max.bytes`'s default).
    pub queued_max_request_bytes: Option<usize>,
    /// `max.connections`: at this many open connections the listener stops accepting until
    /// one closes.
    pub max_connections: usize,
    /// `max.connections.per.ip`: a further connection from the address is closed at once.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides` (`host:count,...`), host names resolved.
    pub max_connections_per_ip_overrides: BTreeMap<IpAddr, usize>,
    /// `connections.max.idle.ms`: a connection with no request, reply or request in progress
    /// for this long is closed; `None` (a negative value) never.
    pub connections_max_idle_ms: Option<u64>,
    /// `connection.failed.authentication.delay.ms`: after answering a failed authentication
    /// the connection stays open (reading nothing) this long before it is closed, as in
    /// Kafka (KIP-306), so the client reads the error before the close.
    pub connection_failed_authentication_delay_ms: u64,
    /// `metrics.listen` (Strata's own): HOST:PORT of the HTTP endpoint serving `/metrics`,
    /// `/health` and `/ready`; `None` (the default, or an empty value) serves none.
    pub metrics_listen: Option<String>,
    /// `request.receive.timeout.ms` (Strata's own): a request must arrive whole within this
    /// long of its first byte, or the connection is closed.
    pub request_receive_timeout_ms: u64,
    /// `quota.window.num`: samples a client quota rate is measured over (Kafka: 11).
    pub quota_window_num: usize,
    /// `quota.window.size.seconds`: length of one quota sample (Kafka: 1).
    pub quota_window_size_seconds: u64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: u64,
    /// `group.consumer.session.timeout.ms`: how long a consumer-protocol (KIP-848) member
    /// stays in its group without a heartbeat.
    pub group_consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`: the heartbeat interval given to
    /// consumer-protocol members.
    pub group_consumer_heartbeat_interval_ms: u64,
    /// `group.consumer.migration.policy`: whether a classic group with members becomes a
    /// consumer group when a consumer-protocol member joins it, and back when only classic
    /// members are left. Default `bidirectional`, as in Kafka 4.
    pub group_consumer_migration_policy: coordinator::group::consumer::MigrationPolicy,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// `offsets.retention.minutes`: committed offsets of a group without members expire this
    /// long after their commit.
    pub offsets_retention_minutes: i64,
    /// `offsets.topic.replication.factor` (capped by the live brokers).
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_partitions: i32,
    /// `transaction.state.log.replication.factor` (capped by the live brokers).
    pub transaction_state_replication_factor: i16,
    /// `transaction.state.log.min.isr` (capped by the replication factor).
    pub transaction_state_min_isr: i16,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an id with no transaction for this long is
    /// forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `producer.id.expiration.ms`: a partition forgets a producer (its idempotence state)
    /// this long after its last write, unless it has a transaction open there. Dynamic.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often producers are checked for
    /// expiry.
    pub producer_id_expiration_check_interval_ms: u64,
    /// `broker.heartbeat.interval.ms`: how often the broker renews its lease with the
    /// metadata quorum. Default 250 (Kafka: 2000).
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced. Default 1000
    /// (Kafka: 9000), so a dead broker's partitions move within about 1.2 s.
    pub broker_session_timeout_ms: u64,
    /// `metadata.snapshot.interval.records` (Strata's own): the metadata quorum snapshots
    /// its image and purges its log every this many Raft entries. Default 1000.
    pub metadata_snapshot_interval_records: u64,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch parks at the leader.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes`: per partition in a follower's fetch.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: per follower fetch response.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: a follower's pause after a failed fetch.
    pub replica_fetch_backoff_ms: u64,
    /// `auto.leader.rebalance.enable`: move leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `controlled.shutdown.enable`: on SIGTERM, hand leaderships over before stopping.
    pub controlled_shutdown_enable: bool,
    /// `authorizer.class.name` is Kafka's StandardAuthorizer: requests are checked against
    /// the ACLs. Unset (the default): every request is allowed.
    pub authorizer_enabled: bool,
    /// `super.users`: semicolon-separated principals (`User:admin;User:broker`) allowed
    /// everything when the authorizer is on.
    pub super_users: String,
    /// `allow.everyone.if.no.acl.found`: with the authorizer on, a resource no ACL applies
    /// to is open to everyone. Default false.
    pub allow_everyone_if_no_acl_found: bool,
    /// Broker-level defaults of topic configs, by topic config name (`retention.ms`, ...).
    pub topic_defaults: BTreeMap<String, String>,
    /// Every property as given, for DescribeConfigs on the broker resource.
    pub properties: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("./strata-data"),
            listeners: vec![ListenerConfig::plaintext(
                "127.0.0.1:9092".parse().expect("valid literal address"),
            )],
            inter_broker_listener: "PLAINTEXT".to_owned(),
            inter_broker_tls: None,
            inter_broker_sasl: None,
            controller_tls: None,
            live_tls: Vec::new(),
            controller_allow_plaintext: false,
            rack: None,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            socket_request_max_bytes: 104_857_600,
            retention_check_interval_ms: 300_000,
            max_in_flight_per_connection: 500,
            queued_max_request_bytes: Some(104_857_600),
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: BTreeMap::new(),
            connections_max_idle_ms: Some(600_000),
            connection_failed_authentication_delay_ms: 100,
            metrics_listen: None,
            request_receive_timeout_ms: 30_000,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            log_cleaner_backoff_ms: 15_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_migration_policy: Default::default(),
            offsets_topic_partitions: 50,
            offsets_retention_minutes: 10_080,
            broker_heartbeat_interval_ms: 250,
            broker_session_timeout_ms: 1000,
            metadata_snapshot_interval_records: 1000,
            offsets_topic_replication_factor: 3,
            transaction_state_partitions: 50,
            transaction_state_replication_factor: 3,
            transaction_state_min_isr: 2,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_backoff_ms: 1_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            controlled_shutdown_enable: true,
            authorizer_enabled: false,
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            topic_defaults: BTreeMap::new(),
            properties: BTreeMap::new(),
        }
    }
}

/// Broker properties that set a topic config's default, as Kafka maps them.
/// Entries are (broker property, topic config, multiplier to milliseconds or 1).
const TOPIC_DEFAULT_PROPERTIES: &[(&str, &str, i64)] = &[
    ("log.segment.bytes", "segment.bytes", 1),
    ("log.roll.hours", "segment.ms", 3_600_000),
    ("log.roll.ms", "segment.ms", 1),
    ("log.retention.hours", "retention.ms", 3_600_000),
    ("log.retention.minutes", "retention.ms", 60_000),
    ("log.retention.ms", "retention.ms", 1),
    ("log.retention.bytes", "retention.bytes", 1),
    ("log.index.size.max.bytes", "segment.index.bytes", 1),
    ("log.index.interval.bytes", "index.interval.bytes", 1),
    ("log.flush.interval.messages", "flush.messages", 1),
    ("log.flush.interval.ms", "flush.ms", 1),
    ("log.cleanup.policy", "cleanup.policy", 1),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms", 1),
    ("message.max.bytes", "max.message.bytes", 1),
    ("log.message.timestamp.type", "message.timestamp.type", 1),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
        1,
    ),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
        1,
    ),
    (
        "log.message.timestamp.difference.max.ms",
        "message.timestamp.difference.max.ms",
        1,
    ),
    ("min.insync.replicas", "min.insync.replicas", 1),
    ("compression.type", "compression.type", 1),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        1,
    ),
];

impl BrokerConfig {
    /// The authorizer `authorizer.class.name` asks for, with `super.users` and
    /// `allow.everyone.if.no.acl.found`; `None` when it is unset.
    pub fn authorizer(&self) -> Option<crate::authorizer::Authorizer> {
        self.authorizer_enabled.then(|| {
            crate::authorizer::Authorizer::new(
                &self.super_users,
                self.allow_everyone_if_no_acl_found,
            )
        })
    }

    /// Applies Kafka properties (`log.dirs`, `num.partitions`, ...) over the current values.
    /// Later, more specific properties win (`log.retention.ms` over `log.retention.hours`).
    /// Settings naming what Strata does not serve yet (TLS, SASL, ...) are refused with
    /// [`ConfigError::Unserved`]; unknown keys are ignored here and listed by
    /// [`unknown_properties`].
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        unserved::refuse(props)?;
        for (key, value) in props {
            self.properties.insert(key.clone(), value.clone());
            self.apply_one(key, value)?;
        }
        if let Some((listeners, inter_broker)) = listeners::parse(props)? {
            self.listeners = listeners;
            self.inter_broker_listener = inter_broker;
        }
        for listener in &mut self.listeners {
            let built = tls::server_config(&self.properties, listener)?;
            listener.tls_certificate = built.as_ref().map(|b| b.certificate.clone());
            listener.tls = built.map(|b| b.config);
            listener.sasl = sasl::settings(&self.properties, listener)?;
            listener.principal_mapper = tls::principal_mapper(&self.properties, &listener.name)?;
        }
        let inter = self.inter_broker();
        let inter_broker_sasl = if inter.protocol.uses_sasl() {
            Some(sasl::inter_broker_credentials(&self.properties, inter)?)
        } else {
            None
        };
        let mut live_tls = Vec::new();
        let inter_broker_tls = if inter.protocol.uses_tls() {
            let (config, live) = tls::inter_broker_tls(&self.properties, &inter.name)?;
            live_tls.push(live);
            Some(config)
        } else {
            None
        };
        let controller_tls = match tls::controller_tls(&self.properties)? {
            Some((config, live)) => {
                live_tls.push(live);
                Some(config)
            }
            None => None,
        };
        self.inter_broker_sasl = inter_broker_sasl;
        self.inter_broker_tls = inter_broker_tls;
        self.controller_tls = controller_tls;
        self.live_tls = live_tls;
        // The table lists coarse units first, so a finer property overrides a coarser one.
        for (property, topic_key, scale) in TOPIC_DEFAULT_PROPERTIES {
            if let Some(value) = props.get(*property) {
                let value = if *scale == 1 {
                    value.clone()
                } else {
                    (parse::<i64>(property, value)? * scale).to_string()
                };
                self.topic_defaults.insert((*topic_key).to_owned(), value);
            }
        }
        if self.max_connections_per_ip == 0 && self.max_connections_per_ip_overrides.is_empty() {
            return Err(invalid(
                "max.connections.per.ip",
                "0",
                "0 needs max.connections.per.ip.overrides".into(),
            ));
        }
        if self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms {
            return Err(invalid(
                "group.consumer.heartbeat.interval.ms",
                &self.group_consumer_heartbeat_interval_ms.to_string(),
                format!(
                    "must be less than group.consumer.session.timeout.ms ({})",
                    self.group_consumer_session_timeout_ms
                ),
            ));
        }
        Ok(())
    }
}

// One arm per property: the arm applies it, and the same arm lists it in
// `APPLIED_PROPERTIES`, which `unknown_properties` knows and suggests from.
applied_properties! {
    impl BrokerConfig {
        fn apply_one(&mut self, key: &str, value: &str) {
            match key {
                "node.id" | "broker.id" => self.node_id = parse(key, value)?,
                "log.dirs" | "log.dir" => {
                    let first = value.split(',').next().unwrap_or_default().trim();
                    self.data_dir = PathBuf::from(first);
                }
                "broker.rack" => self.rack = Some(value.to_owned()),
                "num.partitions" => self.num_partitions = parse_positive(key, value)?,
                "default.replication.factor" => {
                    self.default_replication_factor = parse_positive(key, value)?
                }
                "auto.create.topics.enable" => self.auto_create_topics = parse(key, value)?,
                "socket.request.max.bytes" => {
                    self.socket_request_max_bytes = parse_positive(key, value)?
                }
                "log.retention.check.interval.ms" => {
                    self.retention_check_interval_ms = parse_positive(key, value)?
                }
                "log.cleaner.backoff.ms" => {
                    self.log_cleaner_backoff_ms = parse_positive(key, value)?
                }
                "queued.max.requests" => {
                    self.max_in_flight_per_connection = parse_positive(key, value)?
                }
                "queued.max.request.bytes" => {
                    let bytes: i64 = parse(key, value)?;
                    self.queued_max_request_bytes = usize::try_from(bytes).ok().filter(|b| *b > 0);
                }
                "max.connections" => self.max_connections = parse(key, value)?,
                "max.connections.per.ip" => self.max_connections_per_ip = parse(key, value)?,
                "max.connections.per.ip.overrides" => {
                    self.max_connections_per_ip_overrides = parse_ip_overrides(key, value)?
                }
                "quota.window.num" => self.quota_window_num = parse_positive(key, value)?,
                "quota.window.size.seconds" => {
                    self.quota_window_size_seconds = parse_positive(key, value)?
                }
                "connections.max.idle.ms" => {
                    let ms: i64 = parse(key, value)?;
                    self.connections_max_idle_ms = u64::try_from(ms).ok();
                }
                "connection.failed.authentication.delay.ms" => {
                    let ms: i32 = parse(key, value)?;
                    self.connection_failed_authentication_delay_ms = u64::try_from(ms).unwrap_or(0);
                }
                "metrics.listen" => {
                    let addr = value.trim();
                    if !addr.is_empty() {
                        split_host_port(key, addr)?;
                    }
                    self.metrics_listen = (!addr.is_empty()).then(|| addr.to_owned());
                }
                "request.receive.timeout.ms" => {
                    self.request_receive_timeout_ms = parse_positive(key, value)?
                }
                "group.initial.rebalance.delay.ms" => {
                    self.group_initial_rebalance_delay_ms = parse(key, value)?
                }
                "group.min.session.timeout.ms" => {
                    self.group_min_session_timeout_ms = parse_positive(key, value)?
                }
                "group.max.session.timeout.ms" => {
                    self.group_max_session_timeout_ms = parse_positive(key, value)?
                }
                "broker.heartbeat.interval.ms" => {
                    self.broker_heartbeat_interval_ms = parse_positive(key, value)?
                }
                "broker.session.timeout.ms" => {
                    self.broker_session_timeout_ms = parse_positive(key, value)?
                }
                "metadata.snapshot.interval.records" => {
                    self.metadata_snapshot_interval_records = parse_positive(key, value)?
                }
                "group.consumer.session.timeout.ms" => {
                    self.group_consumer_session_timeout_ms = parse_positive(key, value)?
                }
                "group.consumer.heartbeat.interval.ms" => {
                    self.group_consumer_heartbeat_interval_ms = parse_positive(key, value)?
                }
                "group.consumer.migration.policy" => {
                    self.group_consumer_migration_policy =
                        value.parse().map_err(|e| invalid(key, value, e))?
                }
                "offsets.retention.minutes" => {
                    self.offsets_retention_minutes = parse_positive(key, value)?
                }
                "offsets.topic.num.partitions" => {
                    self.offsets_topic_partitions = parse_positive(key, value)?
                }
                "offsets.topic.replication.factor" => {
                    self.offsets_topic_replication_factor = parse_positive(key, value)?
                }
                "transaction.state.log.num.partitions" => {
                    self.transaction_state_partitions = parse_positive(key, value)?
                }
                "transaction.state.log.replication.factor" => {
                    self.transaction_state_replication_factor = parse_positive(key, value)?
                }
                "transaction.state.log.min.isr" => {
                    self.transaction_state_min_isr = parse_positive(key, value)?
                }
                "transaction.max.timeout.ms" => {
                    self.transaction_max_timeout_ms = parse_positive(key, value)?
                }
                "transactional.id.expiration.ms" => {
                    self.transactional_id_expiration_ms = parse_positive(key, value)?
                }
                "producer.id.expiration.ms" => {
                    self.producer_id_expiration_ms = parse_positive(key, value)?
                }
                "producer.id.expiration.check.interval.ms" => {
                    self.producer_id_expiration_check_interval_ms = parse_positive(key, value)?
                }
                "replica.lag.time.max.ms" => {
                    self.replica_lag_time_max_ms = parse_positive(key, value)?
                }
                "replica.fetch.wait.max.ms" => {
                    self.replica_fetch_wait_max_ms = parse_positive(key, value)?
                }
                "replica.fetch.max.bytes" => {
                    self.replica_fetch_max_bytes = parse_positive(key, value)?
                }
                "replica.fetch.response.max.bytes" => {
                    self.replica_fetch_response_max_bytes = parse_positive(key, value)?
                }
                "replica.fetch.backoff.ms" => {
                    self.replica_fetch_backoff_ms = parse_positive(key, value)?
                }
                "auto.leader.rebalance.enable" => {
                    self.auto_leader_rebalance_enable = parse(key, value)?
                }
                "leader.imbalance.check.interval.seconds" => {
                    self.leader_imbalance_check_interval_seconds = parse_positive(key, value)?
                }
                "controlled.shutdown.enable" => {
                    self.controlled_shutdown_enable = parse(key, value)?
                }
                "authorizer.class.name" => {
                    self.authorizer_enabled = match value.trim() {
                        "" => false,
                        crate::authorizer::STANDARD_AUTHORIZER => true,
                        _ => {
                            return Err(ConfigError::Unserved {
                                key: key.to_owned(),
                                value: value.to_owned(),
                                what: format!(
                                    "authorizers other than {}",
                                    crate::authorizer::STANDARD_AUTHORIZER
                                ),
                            })
                        }
                    }
                }
                "super.users" => self.super_users = value.to_owned(),
                "allow.everyone.if.no.acl.found" => {
                    self.allow_everyone_if_no_acl_found = parse(key, value)?
                }
                "controller.allow.plaintext" => {
                    self.controller_allow_plaintext = parse(key, value)?
                }
                // Read together by `listeners::parse`.
                "listeners"
                | "advertised.listeners"
                | "listener.security.protocol.map"
                | "inter.broker.listener.name"
                | "security.inter.broker.protocol"
                | "controller.listener.names" => {}
            }
        }
    }
}

impl BrokerConfig {
    /// The TLS server configuration of `listener` read again from its settings and the files
    /// they name (`None` for a listener without TLS): what a changed keystore serves.
    /// `dynamic` holds this broker's dynamic configs, whose listener-prefixed TLS store
    /// settings (`dynamic::RELOADABLE_TLS`) win over the file's.
    pub fn listener_tls(
        &self,
        listener: &ListenerConfig,
        dynamic: &BTreeMap<String, String>,
    ) -> Result<Option<ServerTls>, ConfigError> {
        tls::server_config(&self.tls_properties(dynamic), listener)
    }

    /// Kafka's check that `new`, the certificate a reload of `listener`'s keystore would
    /// present, keeps the subject and subject alternative names of `served` unless
    /// `ssl.allow.dn.changes` / `ssl.allow.san.changes` say otherwise (`dynamic` as in
    /// [`Self::listener_tls`]). The error is Kafka's message.
    pub fn check_certificate_change(
        &self,
        listener: &ListenerConfig,
        dynamic: &BTreeMap<String, String>,
        served: &rustls_pki_types::CertificateDer<'_>,
        new: &rustls_pki_types::CertificateDer<'_>,
    ) -> Result<(), String> {
        let (dn, san) = tls::allowed_changes(&self.tls_properties(dynamic), &listener.name)
            .map_err(|e| e.to_string())?;
        tls::ensure_compatible(served, new, dn, san)
    }

    /// The files `listener`'s TLS is read from: its `ssl.keystore.location` and
    /// `ssl.truststore.location`, each if set, `dynamic` as in [`Self::listener_tls`].
    pub fn listener_tls_files(
        &self,
        listener: &ListenerConfig,
        dynamic: &BTreeMap<String, String>,
    ) -> Vec<std::path::PathBuf> {
        if !listener.protocol.uses_tls() {
            return Vec::new();
        }
        let props = self.tls_properties(dynamic);
        dynamic::RELOADABLE_TLS
            .iter()
            .filter_map(|key| tls::listener_setting(&props, &listener.name, key))
            .map(|(_, path)| std::path::PathBuf::from(path.trim()))
            .collect()
    }

    /// The file's properties with the TLS store settings of `dynamic` over them.
    fn tls_properties(&self, dynamic: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut props = self.properties.clone();
        for (key, value) in dynamic {
            if dynamic::listener_tls_key(key).is_some() {
                props.insert(key.clone(), value.clone());
            }
        }
        props
    }

    /// The inter-broker listener (`inter.broker.listener.name`).
    pub fn inter_broker(&self) -> &ListenerConfig {
        self.listeners
            .iter()
            .find(|l| l.name == self.inter_broker_listener)
            .unwrap_or(&self.listeners[0])
    }

    /// Binds the first listener to `bind` (`--listen`); it also advertises `bind` unless
    /// `advertise` is given (`--advertise`).
    pub fn set_first_listener(&mut self, bind: Option<SocketAddr>, advertise: (String, u16)) {
        if let Some(listener) = self.listeners.first_mut() {
            if let Some(bind) = bind {
                listener.bind = bind;
            }
            listener.advertised = advertise;
        }
    }
}

/// Parses `max.connections.per.ip.overrides`: `host:count` entries separated by commas,
/// each host an address or a name (every address it resolves to gets the count).
fn parse_ip_overrides(key: &str, value: &str) -> Result<BTreeMap<IpAddr, usize>, ConfigError> {
    let mut overrides = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, format!("{entry:?} is not HOST:COUNT")))?;
        let count: usize = parse(key, count)?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| invalid(key, value, format!("resolving {host}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in addresses {
            overrides.insert(ip, count);
        }
    }
    Ok(overrides)
}

/// Splits `host:port`, keeping IPv6 brackets off the host.
pub fn split_host_port(key: &str, value: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, value, "expected HOST:PORT".into()))?;
    let port = port
        .parse()
        .map_err(|e| invalid(key, value, format!("port: {e}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| invalid(key, value, e.to_string()))
}

fn parse_positive<T>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let parsed: T = parse(key, value)?;
    if parsed <= T::default() {
        return Err(invalid(key, value, "must be positive".into()));
    }
    Ok(parsed)
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Properties as `strata serve` reads them from a file, for the config tests.
    pub(super) fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finer_retention_property_overrides_coarser() {
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[
                ("log.retention.hours", "1"),
                ("log.retention.ms", "5000"),
            ]))
            .unwrap();
        assert_eq!(config.topic_defaults["retention.ms"], "5000");
    }

    #[test]
    fn hours_are_converted_to_milliseconds() {
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[("log.retention.hours", "2")]))
            .unwrap();
        assert_eq!(config.topic_defaults["retention.ms"], "7200000");
    }

    #[test]
    fn listeners_accept_kafka_syntax() {
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[
                ("listeners", "PLAINTEXT://127.0.0.1:19092"),
                ("advertised.listeners", "PLAINTEXT://localhost:19092"),
            ]))
            .unwrap();
        assert_eq!(config.listeners[0].bind.port(), 19092);
        assert_eq!(
            config.listeners[0].advertised,
            ("localhost".to_owned(), 19092)
        );
    }

    #[test]
    fn advertised_listeners_default_to_listeners() {
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[("listeners", "PLAINTEXT://127.0.0.7:19093")]))
            .unwrap();
        assert_eq!(config.listeners[0].bind.to_string(), "127.0.0.7:19093");
        assert_eq!(
            config.listeners[0].advertised,
            ("127.0.0.7".to_owned(), 19093)
        );
        // An explicit `advertised.listeners` still wins.
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[
                ("advertised.listeners", "PLAINTEXT://broker-1.example:9092"),
                ("listeners", "PLAINTEXT://127.0.0.7:19093"),
            ]))
            .unwrap();
        assert_eq!(
            config.listeners[0].advertised,
            ("broker-1.example".to_owned(), 9092)
        );
    }

    #[test]
    fn consumer_heartbeats_must_come_within_the_session_timeout() {
        let mut config = BrokerConfig::default();
        config
            .apply_properties(&props(&[
                ("group.consumer.session.timeout.ms", "6000"),
                ("group.consumer.heartbeat.interval.ms", "500"),
            ]))
            .unwrap();
        assert_eq!(config.group_consumer_session_timeout_ms, 6_000);
        let err = BrokerConfig::default()
            .apply_properties(&props(&[("group.consumer.session.timeout.ms", "3000")]))
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("group.consumer.heartbeat.interval.ms"));
    }

    #[test]
    fn the_migration_policy_takes_kafka_s_names_in_any_case() {
        use coordinator::group::consumer::MigrationPolicy;
        let mut config = BrokerConfig::default();
        assert_eq!(
            config.group_consumer_migration_policy,
            MigrationPolicy::Bidirectional
        );
        config
            .apply_properties(&props(&[("group.consumer.migration.policy", "UPGRADE")]))
            .unwrap();
        assert_eq!(
            config.group_consumer_migration_policy,
            MigrationPolicy::Upgrade
        );
        let err = BrokerConfig::default()
            .apply_properties(&props(&[("group.consumer.migration.policy", "sideways")]))
            .unwrap_err();
        assert!(err.to_string().contains("group.consumer.migration.policy"));
    }

    #[test]
    fn connection_limits_follow_kafka() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.max_connections, i32::MAX as usize);
        assert_eq!(config.connections_max_idle_ms, Some(600_000));
        config
            .apply_properties(&props(&[
                ("max.connections", "100"),
                ("max.connections.per.ip", "0"),
                (
                    "max.connections.per.ip.overrides",
                    "127.0.0.2:5, [::1]:7,localhost:9",
                ),
                ("connections.max.idle.ms", "-1"),
                ("queued.max.request.bytes", "-1"),
            ]))
            .unwrap();
        assert_eq!(config.max_connections, 100);
        let overrides = &config.max_connections_per_ip_overrides;
        assert_eq!(overrides[&"127.0.0.2".parse::<IpAddr>().unwrap()], 5);
        assert_eq!(overrides[&"127.0.0.1".parse::<IpAddr>().unwrap()], 9);
        assert!(overrides.contains_key(&"::1".parse::<IpAddr>().unwrap()));
        assert_eq!(config.connections_max_idle_ms, None);
        assert_eq!(config.queued_max_request_bytes, None);
        let err = BrokerConfig::default()
            .apply_properties(&props(&[("max.connections.per.ip", "0")]))
            .unwrap_err();
        assert!(err.to_string().contains("max.connections.per.ip"));
        assert!(BrokerConfig::default()
            .apply_properties(&props(&[("max.connections.per.ip.overrides", "nocount")]))
            .is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let mut config = BrokerConfig::default();
        let err = config
            .apply_properties(&props(&[("num.partitions", "zero")]))
            .unwrap_err();
        assert!(err.to_string().contains("num.partitions"));
    }

    #[test]
    fn metrics_listen_is_off_unless_set_to_host_port() {
        let mut config = BrokerConfig::default();
        assert_eq!(config.metrics_listen, None);
        config
            .apply_properties(&props(&[("metrics.listen", "127.0.0.1:9644")]))
            .unwrap();
        assert_eq!(config.metrics_listen.as_deref(), Some("127.0.0.1:9644"));
        config
            .apply_properties(&props(&[("metrics.listen", "")]))
            .unwrap();
        assert_eq!(config.metrics_listen, None);
        assert!(config
            .apply_properties(&props(&[("metrics.listen", "9644")]))
            .is_err());
    }
}

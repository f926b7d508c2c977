//! Broker configs as Kafka resolves them at runtime: the catalog of every broker property
//! Strata knows (type, default, whether it may change without a restart), the layers a
//! value comes from with Kafka's synonyms, and the checks a dynamic change passes before
//! it is submitted to the metadata quorum.
//!
//! A value is looked up, per key, in the broker's own dynamic configs
//! (DYNAMIC_BROKER_CONFIG), then the cluster-wide dynamic default
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), then the configuration file (STATIC_BROKER_CONFIG),
//! then the default (DEFAULT_CONFIG). The dynamic layers live in the metadata image.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use controller::{topic_config_defs, ConfigKind, MetadataImage};

use super::known::{is_known, IGNORED};
use super::reference::meaning;
use super::{BrokerConfig, APPLIED_PROPERTIES};
use crate::server::ConnectionLimits;
use crate::topic_config::ConfigSource;

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
const LONG_MAX: &str = "9223372036854775807";

/// Kafka's `ServerTopicConfigSynonyms`: each topic config with the broker properties that
/// set its default, highest priority first, each with its multiplier to the topic config's
/// unit (hours and minutes to milliseconds).
pub(crate) const TOPIC_SYNONYMS: &[(&str, &[(&str, i64)])] = &[
    ("segment.bytes", &[("log.segment.bytes", 1)]),
    (
        "segment.ms",
        &[("log.roll.ms", 1), ("log.roll.hours", HOUR)],
    ),
    (
        "segment.jitter.ms",
        &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", HOUR)],
    ),
    ("segment.index.bytes", &[("log.index.size.max.bytes", 1)]),
    ("flush.messages", &[("log.flush.interval.messages", 1)]),
    (
        "flush.ms",
        &[
            ("log.flush.interval.ms", 1),
            ("log.flush.scheduler.interval.ms", 1),
        ],
    ),
    ("retention.bytes", &[("log.retention.bytes", 1)]),
    (
        "retention.ms",
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", MINUTE),
            ("log.retention.hours", HOUR),
        ],
    ),
    ("max.message.bytes", &[("message.max.bytes", 1)]),
    ("index.interval.bytes", &[("log.index.interval.bytes", 1)]),
    (
        "delete.retention.ms",
        &[("log.cleaner.delete.retention.ms", 1)],
    ),
    (
        "min.compaction.lag.ms",
        &[("log.cleaner.min.compaction.lag.ms", 1)],
    ),
    (
        "max.compaction.lag.ms",
        &[("log.cleaner.max.compaction.lag.ms", 1)],
    ),
    (
        "file.delete.delay.ms",
        &[("log.segment.delete.delay.ms", 1)],
    ),
    (
        "min.cleanable.dirty.ratio",
        &[("log.cleaner.min.cleanable.ratio", 1)],
    ),
    ("cleanup.policy", &[("log.cleanup.policy", 1)]),
    (
        "unclean.leader.election.enable",
        &[("unclean.leader.election.enable", 1)],
    ),
    ("min.insync.replicas", &[("min.insync.replicas", 1)]),
    ("compression.type", &[("compression.type", 1)]),
    ("compression.gzip.level", &[("compression.gzip.level", 1)]),
    ("compression.lz4.level", &[("compression.lz4.level", 1)]),
    ("compression.zstd.level", &[("compression.zstd.level", 1)]),
    ("preallocate", &[("log.preallocate", 1)]),
    (
        "message.format.version",
        &[("log.message.format.version", 1)],
    ),
    (
        "message.downconversion.enable",
        &[("log.message.downconversion.enable", 1)],
    ),
    (
        "message.timestamp.type",
        &[("log.message.timestamp.type", 1)],
    ),
    (
        "message.timestamp.difference.max.ms",
        &[("log.message.timestamp.difference.max.ms", 1)],
    ),
    (
        "message.timestamp.before.max.ms",
        &[("log.message.timestamp.before.max.ms", 1)],
    ),
    (
        "message.timestamp.after.max.ms",
        &[("log.message.timestamp.after.max.ms", 1)],
    ),
    ("local.retention.ms", &[("log.local.retention.ms", 1)]),
    ("local.retention.bytes", &[("log.local.retention.bytes", 1)]),
];

/// The broker synonyms of topic config `key`, highest priority first (empty for none).
pub(crate) fn topic_synonyms(key: &str) -> &'static [(&'static str, i64)] {
    TOPIC_SYNONYMS
        .iter()
        .find(|(topic, _)| *topic == key)
        .map_or(&[], |(_, synonyms)| synonyms)
}

/// Broker properties Strata applies while running, beyond the first synonym of each
/// topic config (Kafka's `DynamicLogConfig`): the connection limits.
const DYNAMIC_BROKER_PROPERTIES: &[&str] = &[
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "producer.id.expiration.ms",
];

/// The TLS store settings a listener reloads when they are altered for one broker (Kafka's
/// `DynamicBrokerConfig.ReloadableFileConfigs`), each only under the listener prefix:
/// `listener.name.<listener>.ssl.keystore.location`.
pub(crate) const RELOADABLE_TLS: &[&str] = &["ssl.keystore.location", "ssl.truststore.location"];

/// The listener (lower case, as written) and setting of `listener.name.<listener>.<setting>`
/// when the setting is one of [`RELOADABLE_TLS`].
pub(crate) fn listener_tls_key(key: &str) -> Option<(&str, &str)> {
    let (listener, setting) = key.strip_prefix("listener.name.")?.split_once('.')?;
    RELOADABLE_TLS
        .contains(&setting)
        .then_some((listener, setting))
}

/// Whether `key` may be changed without a restart (Kafka's `DynamicBrokerConfig` keys that
/// Strata applies at runtime). Everything else is read-only.
pub(crate) fn is_dynamic(key: &str) -> bool {
    DYNAMIC_BROKER_PROPERTIES.contains(&key)
        || listener_tls_key(key).is_some()
        || TOPIC_SYNONYMS
            .iter()
            .any(|(_, synonyms)| synonyms.first().is_some_and(|(name, _)| *name == key))
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the names a broker property is
/// resolved through, highest priority first.
pub(crate) fn broker_synonyms(key: &str) -> Vec<&str> {
    const GROUPS: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
    ];
    if key == "log.flush.interval.ms" {
        return vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    }
    GROUPS
        .iter()
        .find(|group| group.contains(&key))
        .map_or_else(|| vec![key], |group| group.to_vec())
}

/// One broker property Strata knows.
#[derive(Debug, Clone)]
pub(crate) struct BrokerKey {
    pub(crate) name: &'static str,
    pub(crate) kind: ConfigKind,
    /// The value in effect when nothing sets it (Strata's own where it differs from Kafka's).
    pub(crate) default: Option<&'static str>,
    /// What the property means (`reference::meaning`): the configuration reference and
    /// DescribeConfigs' documentation.
    pub(crate) doc: Option<String>,
}

impl BrokerKey {
    /// Whether the value is a secret (Kafka's PASSWORD type): never shown.
    pub(crate) fn sensitive(&self) -> bool {
        self.kind == ConfigKind::Password
    }
}

/// Types and defaults of the broker properties that are not a topic config's default.
const TYPES: &[(&str, ConfigKind, Option<&str>)] = {
    use ConfigKind::*;
    &[
        // Applied.
        ("node.id", Int, Some("-1")),
        ("broker.id", Int, Some("-1")),
        ("log.dirs", String, None),
        ("log.dir", String, Some("/tmp/kafka-logs")),
        ("broker.rack", String, None),
        ("num.partitions", Int, Some("1")),
        ("default.replication.factor", Int, Some("1")),
        ("auto.create.topics.enable", Boolean, Some("true")),
        ("socket.request.max.bytes", Int, Some("104857600")),
        ("log.retention.check.interval.ms", Long, Some("300000")),
        ("log.cleaner.backoff.ms", Long, Some("15000")),
        ("queued.max.requests", Int, Some("500")),
        ("queued.max.request.bytes", Long, Some("104857600")),
        ("max.connections", Int, Some("2147483647")),
        ("max.connections.per.ip", Int, Some("2147483647")),
        ("max.connections.per.ip.overrides", String, Some("")),
        ("connections.max.idle.ms", Long, Some("600000")),
        ("quota.window.num", Int, Some("11")),
        ("quota.window.size.seconds", Int, Some("1")),
        ("metrics.listen", String, None),
        ("request.receive.timeout.ms", Long, Some("30000")),
        ("group.initial.rebalance.delay.ms", Int, Some("3000")),
        ("group.min.session.timeout.ms", Int, Some("6000")),
        ("group.max.session.timeout.ms", Int, Some("1800000")),
        ("broker.heartbeat.interval.ms", Int, Some("250")),
        ("broker.session.timeout.ms", Int, Some("1000")),
        ("metadata.snapshot.interval.records", Long, Some("1000")),
        ("group.consumer.session.timeout.ms", Int, Some("45000")),
        ("group.consumer.heartbeat.interval.ms", Int, Some("5000")),
        ("offsets.retention.minutes", Int, Some("10080")),
        ("offsets.topic.num.partitions", Int, Some("50")),
        ("offsets.topic.replication.factor", Short, Some("3")),
        (
            "group.consumer.migration.policy",
            String,
            Some("bidirectional"),
        ),
        ("transaction.state.log.num.partitions", Int, Some("50")),
        ("transaction.state.log.replication.factor", Short, Some("3")),
        ("transaction.state.log.min.isr", Int, Some("2")),
        ("transaction.max.timeout.ms", Int, Some("900000")),
        ("transactional.id.expiration.ms", Int, Some("604800000")),
        ("producer.id.expiration.ms", Int, Some("86400000")),
        (
            "producer.id.expiration.check.interval.ms",
            Int,
            Some("600000"),
        ),
        ("replica.lag.time.max.ms", Long, Some("30000")),
        ("replica.fetch.wait.max.ms", Int, Some("500")),
        ("replica.fetch.max.bytes", Int, Some("1048576")),
        ("replica.fetch.response.max.bytes", Int, Some("10485760")),
        ("replica.fetch.backoff.ms", Int, Some("1000")),
        ("auto.leader.rebalance.enable", Boolean, Some("true")),
        ("leader.imbalance.check.interval.seconds", Long, Some("300")),
        ("controlled.shutdown.enable", Boolean, Some("true")),
        ("controller.allow.plaintext", Boolean, Some("false")),
        ("listeners", List, Some("PLAINTEXT://:9092")),
        ("advertised.listeners", List, None),
        // Topic-config defaults in other units than the topic config, or without a default.
        ("log.roll.ms", Long, None),
        ("log.roll.hours", Int, Some("168")),
        ("log.roll.jitter.ms", Long, None),
        ("log.roll.jitter.hours", Int, Some("0")),
        ("log.retention.ms", Long, None),
        ("log.retention.minutes", Int, None),
        ("log.retention.hours", Int, Some("168")),
        ("log.flush.interval.ms", Long, None),
        ("log.flush.scheduler.interval.ms", Long, Some(LONG_MAX)),
        // Accepted and not used.
        ("process.roles", List, None),
        ("controller.quorum.voters", List, Some("")),
        ("controller.quorum.bootstrap.servers", List, Some("")),
        ("controller.listener.names", List, None),
        ("inter.broker.listener.name", String, None),
        ("metadata.log.dir", String, None),
        ("metadata.log.segment.bytes", Int, Some("1073741824")),
        ("metadata.log.segment.ms", Long, Some("604800000")),
        ("metadata.max.retention.bytes", Long, Some("104857600")),
        ("metadata.max.retention.ms", Long, Some("604800000")),
        ("controller.quorum.election.timeout.ms", Int, Some("1000")),
        (
            "controller.quorum.election.backoff.max.ms",
            Int,
            Some("1000"),
        ),
        ("controller.quorum.fetch.timeout.ms", Int, Some("2000")),
        ("controller.quorum.request.timeout.ms", Int, Some("2000")),
        ("controller.quorum.retry.backoff.ms", Int, Some("20")),
        ("controller.quorum.append.linger.ms", Int, Some("25")),
        ("zookeeper.connect", String, None),
        ("zookeeper.connection.timeout.ms", Int, None),
        ("num.network.threads", Int, Some("3")),
        ("num.io.threads", Int, Some("8")),
        ("background.threads", Int, Some("10")),
        ("num.recovery.threads.per.data.dir", Int, Some("2")),
        ("num.replica.fetchers", Int, Some("1")),
        ("num.replica.alter.log.dirs.threads", Int, None),
        ("log.cleaner.threads", Int, Some("1")),
        ("socket.send.buffer.bytes", Int, Some("102400")),
        ("socket.receive.buffer.bytes", Int, Some("102400")),
        ("socket.listen.backlog.size", Int, Some("50")),
        ("replica.socket.receive.buffer.bytes", Int, Some("65536")),
        ("replica.socket.timeout.ms", Int, Some("30000")),
        (
            "log.flush.offset.checkpoint.interval.ms",
            Int,
            Some("60000"),
        ),
        (
            "log.flush.start.offset.checkpoint.interval.ms",
            Int,
            Some("60000"),
        ),
        (
            "replica.high.watermark.checkpoint.interval.ms",
            Long,
            Some("5000"),
        ),
        ("log.cleaner.enable", Boolean, Some("true")),
        ("log.cleaner.dedupe.buffer.size", Long, Some("134217728")),
        ("log.cleaner.io.buffer.size", Int, Some("524288")),
        ("log.cleaner.io.buffer.load.factor", Double, Some("0.9")),
        (
            "log.cleaner.io.max.bytes.per.second",
            Double,
            Some("1.7976931348623157E308"),
        ),
        ("inter.broker.protocol.version", String, None),
        ("delete.topic.enable", Boolean, Some("true")),
        ("group.max.size", Int, Some("2147483647")),
        (
            "group.coordinator.rebalance.protocols",
            List,
            Some("classic,consumer"),
        ),
        ("group.consumer.assignors", List, Some("uniform,range")),
        ("offsets.commit.timeout.ms", Int, Some("5000")),
        ("offsets.load.buffer.size", Int, Some("5242880")),
        ("offsets.topic.segment.bytes", Int, Some("104857600")),
        ("offsets.topic.compression.codec", Int, Some("0")),
        ("offsets.retention.check.interval.ms", Long, Some("600000")),
        ("transaction.state.log.replication.factor", Short, Some("3")),
        ("transaction.state.log.min.isr", Int, Some("2")),
        ("transaction.state.log.num.partitions", Int, Some("50")),
        (
            "transaction.state.log.segment.bytes",
            Int,
            Some("104857600"),
        ),
        ("transaction.max.timeout.ms", Int, Some("900000")),
        ("transactional.id.expiration.ms", Int, Some("604800000")),
        ("super.users", String, Some("")),
        ("allow.everyone.if.no.acl.found", Boolean, Some("false")),
        (
            "connection.failed.authentication.delay.ms",
            Int,
            Some("100"),
        ),
        ("auto.include.jmx.reporter", Boolean, Some("true")),
        ("metric.reporters", List, Some("")),
        ("kafka.metrics.reporters", List, Some("")),
        ("metrics.num.samples", Int, Some("2")),
        ("metrics.recording.level", String, Some("INFO")),
        ("metrics.sample.window.ms", Long, Some("30000")),
        ("authorizer.class.name", String, Some("")),
        // Checked: refused unless they ask for what Strata serves.
        ("sasl.enabled.mechanisms", List, Some("GSSAPI")),
        ("sasl.jaas.config", Password, None),
        ("sasl.server.callback.handler.class", Class, None),
        ("sasl.oauthbearer.jwks.endpoint.url", String, None),
        ("sasl.oauthbearer.expected.audience", List, None),
        ("sasl.oauthbearer.expected.issuer", String, None),
        ("sasl.oauthbearer.sub.claim.name", String, Some("sub")),
        ("sasl.oauthbearer.clock.skew.seconds", Int, Some("30")),
        ("connections.max.reauth.ms", Long, Some("0")),
        ("ssl.keystore.location", String, None),
        ("ssl.keystore.certificate.chain", Password, None),
        ("ssl.keystore.key", Password, None),
        ("ssl.truststore.location", String, None),
        ("ssl.truststore.certificates", Password, None),
        ("ssl.client.auth", String, Some("none")),
        ("ssl.principal.mapping.rules", String, Some("DEFAULT")),
        ("security.inter.broker.protocol", String, Some("PLAINTEXT")),
        ("client.quota.callback.class", Class, None),
        ("replica.selector.class", String, None),
        ("remote.log.storage.system.enable", Boolean, Some("false")),
        (
            "listener.security.protocol.map",
            String,
            Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        ),
    ]
};

/// Every broker property Strata knows, sorted by name: applied, topic-config defaults,
/// accepted-and-ignored and checked ones.
pub(crate) fn catalog() -> &'static [BrokerKey] {
    static CATALOG: OnceLock<Vec<BrokerKey>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // Type and default of each name: a topic config's for the broker properties that set
        // its default, the broker's own table over those, strings for the rest.
        let mut keys: BTreeMap<&'static str, (ConfigKind, Option<&'static str>)> = BTreeMap::new();
        let mut topic_docs: BTreeMap<&'static str, String> = BTreeMap::new();
        for (topic_key, synonyms) in TOPIC_SYNONYMS {
            let Some(def) = topic_config_defs().iter().find(|d| d.name == *topic_key) else {
                continue;
            };
            for (name, _) in *synonyms {
                keys.insert(name, (def.kind, def.default));
                topic_docs.insert(
                    name,
                    format!("The default of topic config {topic_key}: {}", def.doc),
                );
            }
        }
        for (name, kind, default) in TYPES {
            keys.insert(name, (*kind, *default));
        }
        for name in APPLIED_PROPERTIES
            .iter()
            .chain(IGNORED.iter().map(|(n, _)| n))
        {
            keys.entry(name).or_insert((ConfigKind::String, None));
        }
        keys.into_iter()
            .map(|(name, (kind, default))| BrokerKey {
                name,
                kind,
                default,
                doc: meaning(name, topic_docs.remove(name)),
            })
            .collect()
    })
}

/// The catalog entry of `key`.
pub(crate) fn broker_key(key: &str) -> Option<&'static BrokerKey> {
    let catalog = catalog();
    catalog
        .binary_search_by(|k| k.name.cmp(key))
        .ok()
        .map(|i| &catalog[i])
}

/// One of the values that decide a config (Kafka's DescribeConfigs synonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Synonym {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: ConfigSource,
}

/// The layers a broker property's value comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers<'a> {
    /// This broker's dynamic configs.
    pub(crate) per_broker: Option<&'a BTreeMap<String, String>>,
    /// The cluster-wide dynamic default.
    pub(crate) cluster_default: &'a BTreeMap<String, String>,
    /// The configuration file.
    pub(crate) static_props: &'a BTreeMap<String, String>,
}

impl<'a> Layers<'a> {
    /// The layers of broker `config` under the dynamic configs of `image`.
    pub(crate) fn new(config: &'a BrokerConfig, image: &'a MetadataImage) -> Self {
        Self {
            per_broker: image.broker_config_overrides(config.node_id),
            cluster_default: image.broker_default_configs(),
            static_props: &config.properties,
        }
    }

    /// The value set for `key` by the most specific layer, if any sets it.
    pub(crate) fn value(&self, key: &str) -> Option<&'a str> {
        self.per_broker
            .and_then(|m| m.get(key))
            .or_else(|| self.cluster_default.get(key))
            .or_else(|| self.static_props.get(key))
            .map(String::as_str)
    }

    /// Kafka's `ConfigHelper.configSynonyms`: for each source, most specific first, each of
    /// `names` that it sets (defaults included); then everything before the first entry
    /// named `name` is dropped.
    pub(crate) fn synonyms(&self, name: &str, names: &[&str], sensitive: bool) -> Vec<Synonym> {
        let empty = BTreeMap::new();
        let layers: [(&BTreeMap<String, String>, ConfigSource); 3] = [
            (
                self.per_broker.unwrap_or(&empty),
                ConfigSource::DynamicBroker,
            ),
            (self.cluster_default, ConfigSource::DynamicDefaultBroker),
            (self.static_props, ConfigSource::StaticBroker),
        ];
        let mut all = Vec::new();
        for (map, source) in layers {
            for n in names {
                if let Some(v) = map.get(*n) {
                    all.push(Synonym {
                        name: (*n).to_owned(),
                        value: (!sensitive).then(|| v.clone()),
                        source,
                    });
                }
            }
        }
        for n in names {
            if let Some(default) = broker_key(n).and_then(|k| k.default) {
                all.push(Synonym {
                    name: (*n).to_owned(),
                    value: (!sensitive).then(|| default.to_owned()),
                    source: ConfigSource::Default,
                });
            }
        }
        let first = all.iter().position(|s| s.name == name).unwrap_or(all.len());
        all.split_off(first)
    }

    /// The broker-level default of topic config `key`: the first of its synonyms that a
    /// layer sets, converted to the topic config's unit; `None` when none is set.
    pub(crate) fn topic_default(&self, key: &str) -> Option<String> {
        topic_synonyms(key).iter().find_map(|(name, scale)| {
            let value = self.value(name)?;
            if *scale == 1 {
                return Some(value.to_owned());
            }
            value
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|v| v.checked_mul(*scale))
                .map(|v| v.to_string())
        })
    }

    /// What a topic's config `key` inherits from the broker (Kafka's synonyms of the
    /// topic config's first broker synonym).
    pub(crate) fn topic_synonym_list(&self, key: &str) -> Vec<Synonym> {
        match topic_synonyms(key).first() {
            Some((primary, _)) => self.synonyms(primary, &broker_synonyms(primary), false),
            None => Vec::new(),
        }
    }
}

/// The connection limits of `config` with the dynamic configs applied over it: the
/// cluster default, then this broker's own.
pub(crate) fn connection_limits(
    config: &BrokerConfig,
    cluster_default: &BTreeMap<String, String>,
    per_broker: &BTreeMap<String, String>,
) -> ConnectionLimits {
    let mut merged = BrokerConfig {
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        max_connections_per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
        ..BrokerConfig::default()
    };
    for layer in [cluster_default, per_broker] {
        for key in DYNAMIC_BROKER_PROPERTIES {
            if let Some(value) = layer.get(*key) {
                // Checked before it was submitted; a value that no longer parses (a host
                // that no longer resolves) keeps the previous one.
                if let Err(error) = merged.apply_one(key, value) {
                    tracing::warn!(%error, "dynamic broker config not applied");
                }
            }
        }
    }
    ConnectionLimits {
        max_total: merged.max_connections,
        max_per_ip: merged.max_connections_per_ip,
        overrides: merged.max_connections_per_ip_overrides,
    }
}

/// Why a dynamic broker config change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DynamicConfigError {
    /// A key no part of Strata knows (INVALID_CONFIG).
    #[error("Unknown broker config {0}")]
    Unknown(String),
    /// Known keys that only the configuration file sets (INVALID_REQUEST).
    #[error("Cannot update these configs dynamically: [{}]", .0.join(", "))]
    NotDynamic(Vec<String>),
    /// A value its key does not accept (INVALID_CONFIG).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    /// TLS store settings without the listener prefix (INVALID_REQUEST).
    #[error(
        "These security configs can be dynamically updated only per-listener using the \
         listener prefix: [{}]",
        .0.join(", ")
    )]
    NeedsListenerPrefix(Vec<String>),
    /// Per-broker settings sent as the cluster default (INVALID_REQUEST).
    #[error(
        "Cannot update these configs at default cluster level, broker id must be specified: \
         [{}]",
        .0.join(", ")
    )]
    PerBrokerOnly(Vec<String>),
}

impl DynamicConfigError {
    /// The Kafka error a refused change is answered with.
    pub(crate) fn kafka_error(&self) -> kafka_protocol::error::ResponseError {
        use kafka_protocol::error::ResponseError;
        match self {
            DynamicConfigError::Unknown(_) | DynamicConfigError::InvalidValue { .. } => {
                ResponseError::InvalidConfig
            }
            DynamicConfigError::NotDynamic(_)
            | DynamicConfigError::NeedsListenerPrefix(_)
            | DynamicConfigError::PerBrokerOnly(_) => ResponseError::InvalidRequest,
        }
    }
}

/// Checks a change of dynamic broker configs (`None` deletes a key) before it is
/// submitted, for one broker (`per_broker`) or as the cluster default: every key known,
/// every key dynamic, TLS store settings under a listener prefix and for one broker only,
/// every other value valid for its key. Whether TLS stores load is checked by the broker
/// they are for (`Broker::check_listener_tls`).
pub(crate) fn check_dynamic_changes(
    changes: &BTreeMap<String, Option<String>>,
    per_broker: bool,
) -> Result<(), DynamicConfigError> {
    let bare: Vec<String> = changes
        .keys()
        .filter(|k| RELOADABLE_TLS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !bare.is_empty() {
        return Err(DynamicConfigError::NeedsListenerPrefix(bare));
    }
    let stores: Vec<String> = changes
        .keys()
        .filter(|k| listener_tls_key(k).is_some())
        .cloned()
        .collect();
    if !per_broker && !stores.is_empty() {
        return Err(DynamicConfigError::PerBrokerOnly(stores));
    }
    let changes: BTreeMap<&String, &Option<String>> = changes
        .iter()
        .filter(|(k, _)| listener_tls_key(k).is_none())
        .collect();
    if let Some(key) = changes.keys().find(|k| !is_known(k)) {
        return Err(DynamicConfigError::Unknown((*key).clone()));
    }
    let fixed: Vec<String> = changes
        .keys()
        .filter(|k| !is_dynamic(k))
        .map(|k| (*k).clone())
        .collect();
    if !fixed.is_empty() {
        return Err(DynamicConfigError::NotDynamic(fixed));
    }
    for (key, value) in changes {
        let Some(value) = value else { continue };
        let invalid = |reason: String| DynamicConfigError::InvalidValue {
            key: key.clone(),
            value: value.clone(),
            reason,
        };
        if let Some((topic_key, _)) = TOPIC_SYNONYMS
            .iter()
            .find(|(_, s)| s.first().is_some_and(|(n, _)| n == key))
        {
            if let Err(rejection) = controller::validate_topic_config(topic_key, value) {
                return Err(invalid(rejection.to_string()));
            }
        } else {
            let mut scratch = BrokerConfig::default();
            scratch
                .apply_one(key, value)
                .map_err(|e| invalid(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::props;

    fn sources(synonyms: &[Synonym]) -> Vec<(&str, ConfigSource)> {
        synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect()
    }

    #[test]
    fn synonyms_follow_kafkas_order_source_first() {
        let per_broker = props(&[("log.retention.ms", "1")]);
        let default = props(&[("log.retention.ms", "2")]);
        let file = props(&[("log.retention.hours", "3"), ("log.retention.ms", "4")]);
        let layers = Layers {
            per_broker: Some(&per_broker),
            cluster_default: &default,
            static_props: &file,
        };
        use ConfigSource::*;
        assert_eq!(
            sources(&layers.topic_synonym_list("retention.ms")),
            [
                ("log.retention.ms", DynamicBroker),
                ("log.retention.ms", DynamicDefaultBroker),
                ("log.retention.ms", StaticBroker),
                ("log.retention.hours", StaticBroker),
                ("log.retention.hours", Default),
            ]
        );
        assert_eq!(layers.topic_default("retention.ms").as_deref(), Some("1"));
        // Only the hours set: Kafka drops every entry before the first log.retention.ms.
        let file = props(&[("log.retention.hours", "3")]);
        let empty = BTreeMap::new();
        let layers = Layers {
            per_broker: None,
            cluster_default: &empty,
            static_props: &file,
        };
        assert_eq!(layers.topic_synonym_list("retention.ms"), []);
        assert_eq!(
            layers.topic_default("retention.ms").as_deref(),
            Some("10800000")
        );
        assert_eq!(
            sources(&layers.topic_synonym_list("segment.bytes")),
            [("log.segment.bytes", Default)]
        );
    }

    #[test]
    fn every_topic_synonym_is_a_known_topic_config_and_broker_property() {
        for (topic_key, synonyms) in TOPIC_SYNONYMS {
            assert!(
                topic_config_defs().iter().any(|d| d.name == *topic_key),
                "{topic_key}"
            );
            for (name, _) in *synonyms {
                assert!(is_known(name), "{name} is not a known broker property");
                assert!(broker_key(name).is_some(), "{name}");
            }
        }
        for name in APPLIED_PROPERTIES {
            assert!(
                TYPES.iter().any(|(n, _, _)| n == name),
                "{name} has no type"
            );
        }
    }

    #[test]
    fn dynamic_changes_are_checked_key_then_value() {
        let change = |k: &str, v: Option<&str>| -> BTreeMap<String, Option<String>> {
            [(k.to_owned(), v.map(str::to_owned))].into()
        };
        assert_eq!(
            check_dynamic_changes(&change("log.retention.ms", Some("5000")), true),
            Ok(())
        );
        assert_eq!(
            check_dynamic_changes(&change("max.connections", None), true),
            Ok(())
        );
        assert!(matches!(
            check_dynamic_changes(&change("log.retention.hours", Some("1")), true),
            Err(DynamicConfigError::NotDynamic(keys)) if keys == ["log.retention.hours"]
        ));
        assert!(matches!(
            check_dynamic_changes(&change("no.such.key", Some("1")), true),
            Err(DynamicConfigError::Unknown(_))
        ));
        assert!(matches!(
            check_dynamic_changes(&change("log.segment.bytes", Some("1")), true),
            Err(DynamicConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            check_dynamic_changes(&change("max.connections", Some("many")), true),
            Err(DynamicConfigError::InvalidValue { .. })
        ));
        // TLS stores: per listener and per broker; whether they load is the broker's check.
        let keystore = "listener.name.ssl.ssl.keystore.location";
        assert_eq!(
            check_dynamic_changes(&change(keystore, Some("/new.pem")), true),
            Ok(())
        );
        let refused = check_dynamic_changes(&change(keystore, Some("/new.pem")), false);
        assert!(matches!(&refused, Err(DynamicConfigError::PerBrokerOnly(k)) if k == &[keystore]));
        let refused = check_dynamic_changes(&change("ssl.truststore.location", None), true);
        assert!(matches!(
            &refused,
            Err(DynamicConfigError::NeedsListenerPrefix(k)) if k == &["ssl.truststore.location"]
        ));
        assert_eq!(
            refused.unwrap_err().kafka_error(),
            kafka_protocol::error::ResponseError::InvalidRequest
        );
        assert!(is_dynamic(keystore) && !is_dynamic("listener.name.ssl.ssl.client.auth"));
    }
}

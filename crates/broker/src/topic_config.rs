//! A topic's effective configuration: Kafka's defaults, overridden by the broker's `log.*`
//! properties (dynamic per-broker, dynamic cluster default, configuration file, in that
//! order), overridden by the topic's own configs; and what the log and the produce path
//! make of it.

use std::collections::BTreeMap;

use segment_store::{CleanupPolicy, LogConfig};

use crate::config::dynamic::{Layers, Synonym};

/// Where an effective config value came from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    /// Set on the topic (TOPIC_CONFIG).
    Topic = 1,
    /// Set dynamically for this broker (DYNAMIC_BROKER_CONFIG).
    DynamicBroker = 2,
    /// Set dynamically as every broker's default (DYNAMIC_DEFAULT_BROKER_CONFIG).
    DynamicDefaultBroker = 3,
    /// Set in the broker's configuration file (STATIC_BROKER_CONFIG).
    StaticBroker = 4,
    /// Kafka's default (DEFAULT_CONFIG).
    Default = 5,
}

/// One effective topic config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EffectiveValue {
    pub(crate) value: Option<String>,
    pub(crate) source: ConfigSource,
    /// What decides the value, most specific first, as Kafka's DescribeConfigs lists it:
    /// the topic's own value, then the broker properties setting its default.
    pub(crate) synonyms: Vec<Synonym>,
}

/// Every known topic config with its effective value, source and synonyms.
pub(crate) fn effective(
    broker: &Layers<'_>,
    topic: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, EffectiveValue> {
    controller::topic_config_defs()
        .iter()
        .map(|def| {
            let mut synonyms = broker.topic_synonym_list(def.name);
            let value = if let Some(v) = topic.get(def.name) {
                synonyms.insert(
                    0,
                    Synonym {
                        name: def.name.to_owned(),
                        value: Some(v.clone()),
                        source: ConfigSource::Topic,
                    },
                );
                Some(v.clone())
            } else {
                broker
                    .topic_default(def.name)
                    .or_else(|| def.default.map(str::to_owned))
            };
            // Kafka: the source is that of the first synonym.
            let source = synonyms.first().map_or(ConfigSource::Default, |s| s.source);
            let entry = EffectiveValue {
                value,
                source,
                synonyms,
            };
            (def.name, entry)
        })
        .collect()
}

/// What the broker's produce path and the log take from a topic's effective config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicSettings {
    pub(crate) log: LogConfig,
    /// `max.message.bytes`: the largest record batch accepted.
    pub(crate) max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`.
    pub(crate) log_append_time: bool,
    /// `min.insync.replicas`.
    pub(crate) min_insync_replicas: usize,
    /// `message.timestamp.before.max.ms` (falling back to the deprecated
    /// `message.timestamp.difference.max.ms`): how far behind the broker's clock a
    /// CreateTime record may be.
    pub(crate) timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (same fallback): how far ahead.
    pub(crate) timestamp_after_max_ms: i64,
}

impl TopicSettings {
    /// Reads the settings out of effective values; anything unparsable keeps its default
    /// (values were validated by the controller when they were set).
    pub(crate) fn from_effective(values: &BTreeMap<&'static str, EffectiveValue>) -> Self {
        let get = |key: &str| values.get(key).and_then(|v| v.value.as_deref());
        let num = |key: &str| get(key).and_then(|v| v.trim().parse::<i64>().ok());
        let defaults = LogConfig::default();
        let explicit = |key: &str| {
            values
                .get(key)
                .filter(|v| v.source != ConfigSource::Default)
                .and_then(|v| v.value.as_deref())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        // Kafka (KIP-937): a bound not set explicitly takes the deprecated
        // difference.max.ms when that one is set.
        let timestamp_bound = |key: &str| {
            explicit(key)
                .or_else(|| explicit("message.timestamp.difference.max.ms"))
                .unwrap_or(i64::MAX)
                .max(0)
        };
        // Kafka writes "never flush" as Long.MAX_VALUE.
        let flush = |key: &str| {
            num(key)
                .filter(|v| *v > 0 && *v < i64::MAX)
                .map(|v| v as u64)
        };
        let cleanup_policy = match get("cleanup.policy") {
            Some(p) => {
                let compact = p.split(',').any(|s| s.trim() == "compact");
                let delete = p.split(',').any(|s| s.trim() == "delete");
                match (compact, delete) {
                    (true, true) => CleanupPolicy::CompactDelete,
                    (true, false) => CleanupPolicy::Compact,
                    _ => CleanupPolicy::Delete,
                }
            }
            None => CleanupPolicy::Delete,
        };
        let log = LogConfig {
            segment_bytes: num("segment.bytes").map_or(defaults.segment_bytes, |v| v as u64),
            segment_ms: num("segment.ms").unwrap_or(defaults.segment_ms),
            segment_index_bytes: num("segment.index.bytes")
                .map_or(defaults.segment_index_bytes, |v| v as u64),
            index_interval_bytes: num("index.interval.bytes")
                .map_or(defaults.index_interval_bytes, |v| v as u64),
            retention_ms: num("retention.ms").unwrap_or(defaults.retention_ms),
            retention_bytes: num("retention.bytes").unwrap_or(defaults.retention_bytes),
            flush_messages: flush("flush.messages"),
            flush_ms: flush("flush.ms"),
            cleanup_policy,
            delete_retention_ms: num("delete.retention.ms").unwrap_or(defaults.delete_retention_ms),
        };
        Self {
            log,
            max_message_bytes: num("max.message.bytes").map_or(1_048_588, |v| v.max(0) as usize),
            log_append_time: get("message.timestamp.type") == Some("LogAppendTime"),
            min_insync_replicas: num("min.insync.replicas").map_or(1, |v| v.max(1) as usize),
            timestamp_before_max_ms: timestamp_bound("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: timestamp_bound("message.timestamp.after.max.ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_value_beats_broker_default_beats_kafka_default() {
        let file: BTreeMap<_, _> = [
            ("log.retention.ms".to_owned(), "1000".to_owned()),
            ("log.segment.bytes".to_owned(), "2048".to_owned()),
            ("log.roll.hours".to_owned(), "1".to_owned()),
        ]
        .into();
        let cluster: BTreeMap<_, _> = [("log.roll.ms".to_owned(), "77".to_owned())].into();
        let broker = Layers {
            per_broker: None,
            cluster_default: &cluster,
            static_props: &file,
        };
        let topic: BTreeMap<_, _> = [("retention.ms".to_owned(), "5".to_owned())].into();
        let values = effective(&broker, &topic);
        assert_eq!(values["retention.ms"].source, ConfigSource::Topic);
        assert_eq!(values["retention.ms"].synonyms.len(), 3);
        assert_eq!(values["segment.bytes"].source, ConfigSource::StaticBroker);
        assert_eq!(
            values["segment.ms"].source,
            ConfigSource::DynamicDefaultBroker
        );
        assert_eq!(values["segment.ms"].value.as_deref(), Some("77"));
        assert_eq!(values["max.message.bytes"].source, ConfigSource::Default);
        let settings = TopicSettings::from_effective(&values);
        assert_eq!(settings.log.retention_ms, 5);
        assert_eq!(settings.log.segment_bytes, 2048);
        assert_eq!(settings.max_message_bytes, 1_048_588);
        assert!(!settings.log_append_time);
        assert_eq!(settings.timestamp_before_max_ms, i64::MAX);
        assert_eq!(settings.timestamp_after_max_ms, i64::MAX);
        assert_eq!(settings.log.flush_messages, None);
    }
}

//! The catalog of topic-level configs: names, Kafka 3.9's defaults, types and validation.
//!
//! Values are validated the way Kafka's `ConfigDef` parses them: surrounding whitespace is
//! ignored, numbers must fit their type, booleans are `true`/`false` in any case, lists
//! are comma separated.

use std::collections::BTreeMap;

use crate::error::Rejection;

/// A config's value type, as Kafka's `ConfigDef.Type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    /// `true` or `false`.
    Boolean,
    /// 16-bit integer.
    Short,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// 64-bit float.
    Double,
    /// Free or enumerated text.
    String,
    /// Comma-separated list.
    List,
    /// A Java class name.
    Class,
    /// A secret; never shown.
    Password,
}

impl ConfigKind {
    /// The `config_type` code DescribeConfigs v3+ reports for this kind
    /// (`DescribeConfigsResponse.ConfigType`).
    pub fn describe_type(self) -> i8 {
        match self {
            ConfigKind::Boolean => 1,
            ConfigKind::String => 2,
            ConfigKind::Int => 3,
            ConfigKind::Short => 4,
            ConfigKind::Long => 5,
            ConfigKind::Double => 6,
            ConfigKind::List => 7,
            ConfigKind::Class => 8,
            ConfigKind::Password => 9,
        }
    }
}

/// One topic-level config.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// The config key, e.g. `retention.ms`.
    pub name: &'static str,
    /// The default exactly as Kafka's DescribeConfigs shows it; `None` when there is none.
    pub default: Option<&'static str>,
    /// The value type.
    pub kind: ConfigKind,
    /// Whether the value must be hidden in DescribeConfigs.
    pub sensitive: bool,
    /// One-line documentation.
    pub doc: &'static str,
    /// Checks a value; `Err` carries the reason, worded like Kafka's `ConfigException`.
    pub validate: fn(&str) -> Result<(), String>,
}

const LONG_MAX: &str = "9223372036854775807";

mod rules;

use rules::*;

#[cfg(test)]
mod tests;

macro_rules! def {
    ($name:literal, $default:expr, $kind:ident, $validate:expr, $doc:literal) => {
        ConfigDef {
            name: $name,
            default: Some($default),
            kind: ConfigKind::$kind,
            sensitive: false,
            doc: $doc,
            validate: $validate,
        }
    };
}

static TOPIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "cleanup.policy",
        "delete",
        List,
        cleanup_policy,
        "Retention policy for old segments: \"delete\", \"compact\" or both."
    ),
    def!(
        "compression.gzip.level",
        "-1",
        Int,
        gzip_level,
        "Compression level used when compression.type is gzip."
    ),
    def!(
        "compression.lz4.level",
        "9",
        Int,
        int_between::<1, 17>,
        "Compression level used when compression.type is lz4."
    ),
    def!(
        "compression.type",
        "producer",
        String,
        compression_type,
        "Final compression of the topic's data; \"producer\" keeps the producer's codec."
    ),
    def!(
        "compression.zstd.level",
        "3",
        Int,
        int_between::<-131072, 22>,
        "Compression level used when compression.type is zstd."
    ),
    def!(
        "delete.retention.ms",
        "86400000",
        Long,
        long_at_least::<0>,
        "How long delete tombstones are kept for compacted topics."
    ),
    def!(
        "file.delete.delay.ms",
        "60000",
        Long,
        long_at_least::<0>,
        "Time to wait before deleting a file from the filesystem."
    ),
    def!(
        "flush.messages",
        LONG_MAX,
        Long,
        long_at_least::<1>,
        "Messages written to a log between forced fsyncs."
    ),
    def!(
        "flush.ms",
        LONG_MAX,
        Long,
        long_at_least::<0>,
        "Maximum time between forced fsyncs of the log."
    ),
    def!(
        "follower.replication.throttled.replicas",
        "",
        List,
        throttled_replicas,
        "Replicas ([partition]:[broker] or *) throttled on the follower side."
    ),
    def!(
        "index.interval.bytes",
        "4096",
        Int,
        int_between::<0, { i32::MAX }>,
        "Bytes of log between two offset index entries."
    ),
    def!(
        "leader.replication.throttled.replicas",
        "",
        List,
        throttled_replicas,
        "Replicas ([partition]:[broker] or *) throttled on the leader side."
    ),
    def!(
        "local.retention.bytes",
        "-2",
        Long,
        long_at_least::<-2>,
        "Local size kept before deletion when tiered storage is on; -2 means retention.bytes."
    ),
    def!(
        "local.retention.ms",
        "-2",
        Long,
        long_at_least::<-2>,
        "Local time kept before deletion when tiered storage is on; -2 means retention.ms."
    ),
    def!(
        "max.compaction.lag.ms",
        LONG_MAX,
        Long,
        long_at_least::<1>,
        "Maximum time a message stays ineligible for compaction."
    ),
    def!(
        "max.message.bytes",
        "1048588",
        Int,
        int_between::<0, { i32::MAX }>,
        "Largest record batch size allowed."
    ),
    def!(
        "message.downconversion.enable",
        "true",
        Boolean,
        boolean,
        "Whether to down-convert message formats for old consumers."
    ),
    def!(
        "message.format.version",
        "3.0-IV1",
        String,
        metadata_version,
        "Deprecated message format version; ignored from 3.0 on."
    ),
    def!(
        "message.timestamp.after.max.ms",
        LONG_MAX,
        Long,
        long_at_least::<0>,
        "Largest allowed amount a timestamp may lie ahead of the broker's clock."
    ),
    def!(
        "message.timestamp.before.max.ms",
        LONG_MAX,
        Long,
        long_at_least::<0>,
        "Largest allowed amount a timestamp may lie behind the broker's clock."
    ),
    def!(
        "message.timestamp.difference.max.ms",
        LONG_MAX,
        Long,
        long_at_least::<0>,
        "Deprecated: largest allowed difference between a timestamp and the broker's clock."
    ),
    def!(
        "message.timestamp.type",
        "CreateTime",
        String,
        timestamp_type,
        "Whether record timestamps are CreateTime or LogAppendTime."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        "0.5",
        Double,
        ratio,
        "Dirty fraction of the log above which it is eligible for cleaning."
    ),
    def!(
        "min.compaction.lag.ms",
        "0",
        Long,
        long_at_least::<0>,
        "Minimum time a message stays uncompacted."
    ),
    def!(
        "min.insync.replicas",
        "1",
        Int,
        int_between::<1, { i32::MAX }>,
        "Minimum in-sync replicas that must acknowledge an acks=all write."
    ),
    def!(
        "preallocate",
        "false",
        Boolean,
        boolean,
        "Whether to preallocate the file when creating a segment."
    ),
    def!(
        "remote.log.copy.disable",
        "false",
        Boolean,
        boolean,
        "Whether to stop copying segments to tiered storage."
    ),
    def!(
        "remote.log.delete.on.disable",
        "false",
        Boolean,
        boolean,
        "Whether to delete remote data when tiered storage is disabled for the topic."
    ),
    def!(
        "remote.storage.enable",
        "false",
        Boolean,
        remote_storage,
        "Whether tiered storage is enabled for the topic."
    ),
    def!(
        "retention.bytes",
        "-1",
        Long,
        any_long,
        "Maximum size of a partition before old segments are deleted; -1 for no limit."
    ),
    def!(
        "retention.ms",
        "604800000",
        Long,
        long_at_least::<-1>,
        "Maximum age of a segment before it is deleted; -1 for no limit."
    ),
    def!(
        "segment.bytes",
        "1073741824",
        Int,
        int_between::<14, { i32::MAX }>,
        "Segment file size."
    ),
    def!(
        "segment.index.bytes",
        "10485760",
        Int,
        int_between::<4, { i32::MAX }>,
        "Size of the offset index of a segment."
    ),
    def!(
        "segment.jitter.ms",
        "0",
        Long,
        long_at_least::<0>,
        "Maximum random jitter subtracted from segment.ms."
    ),
    def!(
        "segment.ms",
        "604800000",
        Long,
        long_at_least::<1>,
        "Time after which a segment is rolled even if not full."
    ),
    def!(
        "unclean.leader.election.enable",
        "false",
        Boolean,
        boolean,
        "Whether out-of-sync replicas may become leader as a last resort."
    ),
];

/// Every topic-level config Kafka 3.9 knows, sorted by name.
pub fn topic_config_defs() -> &'static [ConfigDef] {
    TOPIC_CONFIGS
}

/// The definition of topic config `key`, if there is one.
pub fn topic_config_def(key: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS
        .binary_search_by(|d| d.name.cmp(key))
        .ok()
        .map(|i| &TOPIC_CONFIGS[i])
}

/// Checks one topic config. An unknown key or an invalid value is
/// [`Rejection::InvalidConfig`].
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), Rejection> {
    let invalid = |reason: String| Rejection::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let def = topic_config_def(key).ok_or_else(|| invalid("Unknown topic config name".into()))?;
    (def.validate)(value).map_err(invalid)
}

/// Checks a topic's complete set of overrides: every key and value, then the rules that
/// tie keys together (`min.compaction.lag.ms` ≤ `max.compaction.lag.ms`).
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), Rejection> {
    for (key, value) in configs {
        validate_topic_config(key, value)?;
    }
    let long = |key: &str| -> i64 {
        configs
            .get(key)
            .map(String::as_str)
            .or_else(|| topic_config_def(key).and_then(|d| d.default))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(i64::MAX)
    };
    let (min_lag, max_lag) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min_lag > max_lag {
        return Err(Rejection::InvalidConfig {
            key: "min.compaction.lag.ms".into(),
            value: min_lag.to_string(),
            reason: format!(
                "conflict topic config setting min.compaction.lag.ms ({min_lag}) > \
                 max.compaction.lag.ms ({max_lag})"
            ),
        });
    }
    Ok(())
}

use super::*;

fn code(key: &str, value: &str) -> Option<i16> {
    validate_topic_config(key, value)
        .err()
        .map(|e| e.kafka_error().code())
}

#[test]
fn catalog_is_sorted_and_complete() {
    let names: Vec<&str> = topic_config_defs().iter().map(|d| d.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        names, sorted,
        "binary search needs a sorted, duplicate-free catalog"
    );
    for required in [
        "cleanup.policy",
        "compression.type",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.downconversion.enable",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    ] {
        assert!(topic_config_def(required).is_some(), "{required} missing");
    }
}

#[test]
fn every_default_is_valid() {
    for def in topic_config_defs() {
        let default = def.default.unwrap();
        assert!(
            (def.validate)(default).is_ok(),
            "{} default {default:?}",
            def.name
        );
    }
}

#[test]
fn kafka_defaults() {
    let default = |k| topic_config_def(k).unwrap().default.unwrap();
    assert_eq!(default("retention.ms"), "604800000");
    assert_eq!(default("segment.bytes"), "1073741824");
    assert_eq!(default("max.message.bytes"), "1048588");
    assert_eq!(default("flush.messages"), "9223372036854775807");
    assert_eq!(default("min.cleanable.dirty.ratio"), "0.5");
    assert_eq!(default("leader.replication.throttled.replicas"), "");
}

#[test]
fn enumerations_and_lists() {
    assert_eq!(code("cleanup.policy", "compact,delete"), None);
    assert_eq!(code("cleanup.policy", " delete , compact "), None);
    assert_eq!(code("cleanup.policy", ""), None);
    assert_eq!(code("cleanup.policy", "delete,"), Some(40));
    assert_eq!(code("cleanup.policy", "Delete"), Some(40));
    for ok in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
        assert_eq!(code("compression.type", ok), None);
    }
    assert_eq!(code("compression.type", "brotli"), Some(40));
    assert_eq!(code("message.timestamp.type", "LogAppendTime"), None);
    assert_eq!(code("message.timestamp.type", "logappendtime"), Some(40));
    assert_eq!(code("leader.replication.throttled.replicas", "*"), None);
    assert_eq!(
        code("leader.replication.throttled.replicas", "0:1, 1:2"),
        None
    );
    assert_eq!(
        code("leader.replication.throttled.replicas", "0:x"),
        Some(40)
    );
}

#[test]
fn numeric_ranges() {
    assert_eq!(code("retention.ms", "-1"), None);
    assert_eq!(code("retention.ms", "-2"), Some(40));
    assert_eq!(code("retention.bytes", "-5"), None);
    assert_eq!(code("segment.bytes", "14"), None);
    assert_eq!(code("segment.bytes", "13"), Some(40));
    assert_eq!(code("segment.bytes", "4294967296"), Some(40));
    assert_eq!(code("min.insync.replicas", "0"), Some(40));
    assert_eq!(code("flush.messages", "0"), Some(40));
    assert_eq!(code("local.retention.ms", "-2"), None);
    assert_eq!(code("min.cleanable.dirty.ratio", "1.5"), Some(40));
    assert_eq!(code("min.cleanable.dirty.ratio", "0.01"), None);
    assert_eq!(code("compression.gzip.level", "0"), Some(40));
    assert_eq!(code("compression.gzip.level", "-1"), None);
    assert_eq!(code("compression.zstd.level", "23"), Some(40));
    assert_eq!(code("segment.ms", "soon"), Some(40));
}

#[test]
fn booleans_and_unsupported_features() {
    assert_eq!(code("preallocate", "TRUE"), None);
    assert_eq!(code("preallocate", "yes"), Some(40));
    assert_eq!(code("remote.storage.enable", "false"), None);
    assert_eq!(code("remote.storage.enable", "true"), Some(40));
    assert_eq!(code("message.format.version", "2.8-IV1"), None);
    assert_eq!(code("message.format.version", "new"), Some(40));
}

#[test]
fn unknown_key_is_invalid_config() {
    assert_eq!(code("retention.hours", "1"), Some(40));
}

//! Which property names Strata knows, and a suggestion for one it does not.
//!
//! Known are the properties an arm of `apply_one` applies, the broker defaults of topic
//! configs (`TOPIC_DEFAULT_PROPERTIES` and Kafka's synonyms table, `dynamic::TOPIC_SYNONYMS`), the settings `unserved` checks, and the Kafka broker
//! properties below that Strata accepts but does not use. Anything else is most likely a
//! typo, which Kafka itself would also ignore, so it is reported, not refused.

use std::collections::BTreeMap;

use super::dynamic::TOPIC_SYNONYMS;
use super::{unserved, APPLIED_PROPERTIES, TOPIC_DEFAULT_PROPERTIES};

/// Kafka broker properties Strata accepts and ignores, with the reason. A property that
/// gets an arm in `apply_one` must leave this list (a test checks).
pub(crate) const IGNORED: &[(&str, &str)] = &[
    // Roles and the quorum come from `strata serve` flags.
    ("process.roles", "roles come from --roles"),
    ("controller.quorum.voters", "voters come from --voters"),
    (
        "controller.quorum.bootstrap.servers",
        "the broker ignores it; strata serve reads it as --controller-bootstrap-servers: a controller outside --voters joins the quorum through it",
    ),
    ("metadata.log.dir", "metadata lives in log.dirs/metadata"),
    (
        "metadata.log.segment.bytes",
        "the metadata log is trimmed by snapshots",
    ),
    (
        "metadata.log.segment.ms",
        "the metadata log is trimmed by snapshots",
    ),
    (
        "metadata.max.retention.bytes",
        "the metadata log is trimmed by snapshots",
    ),
    (
        "metadata.max.retention.ms",
        "the metadata log is trimmed by snapshots",
    ),
    (
        "controller.quorum.election.timeout.ms",
        "Raft timings are Strata's own",
    ),
    (
        "controller.quorum.election.backoff.max.ms",
        "Raft timings are Strata's own",
    ),
    (
        "controller.quorum.fetch.timeout.ms",
        "Raft timings are Strata's own",
    ),
    (
        "controller.quorum.request.timeout.ms",
        "Raft timings are Strata's own",
    ),
    (
        "controller.quorum.retry.backoff.ms",
        "Raft timings are Strata's own",
    ),
    (
        "controller.quorum.append.linger.ms",
        "Raft timings are Strata's own",
    ),
    (
        "zookeeper.connect",
        "the metadata quorum replaces ZooKeeper",
    ),
    (
        "zookeeper.connection.timeout.ms",
        "the metadata quorum replaces ZooKeeper",
    ),
    // Threads and sockets.
    (
        "num.network.threads",
        "tokio's workers serve all connections",
    ),
    (
        "num.io.threads",
        "tokio's workers and blocking pool run requests",
    ),
    (
        "background.threads",
        "background work runs on tokio's blocking pool",
    ),
    (
        "num.recovery.threads.per.data.dir",
        "recovery runs on the blocking pool",
    ),
    ("num.replica.fetchers", "one fetcher task per leader broker"),
    ("num.replica.alter.log.dirs.threads", "one log directory"),
    (
        "log.cleaner.threads",
        "compaction runs on the blocking pool",
    ),
    (
        "socket.send.buffer.bytes",
        "the OS's socket buffers are used",
    ),
    (
        "socket.receive.buffer.bytes",
        "the OS's socket buffers are used",
    ),
    (
        "socket.listen.backlog.size",
        "the OS's listen backlog is used",
    ),
    (
        "replica.socket.receive.buffer.bytes",
        "the OS's socket buffers are used",
    ),
    (
        "replica.socket.timeout.ms",
        "follower fetches time out by replica.fetch.wait.max.ms",
    ),
    // Checkpoints and flushing schedules.
    (
        "log.flush.offset.checkpoint.interval.ms",
        "checkpoints are written by housekeeping",
    ),
    (
        "log.flush.start.offset.checkpoint.interval.ms",
        "checkpoints are written by housekeeping",
    ),
    (
        "replica.high.watermark.checkpoint.interval.ms",
        "checkpoints are written by housekeeping",
    ),
    // Log cleaner and message format tuning.
    ("log.cleaner.enable", "compacted topics are always cleaned"),
    (
        "log.cleaner.dedupe.buffer.size",
        "the cleaner sizes its own map",
    ),
    (
        "log.cleaner.io.buffer.size",
        "the cleaner sizes its own buffers",
    ),
    (
        "log.cleaner.io.buffer.load.factor",
        "the cleaner sizes its own map",
    ),
    (
        "log.cleaner.io.max.bytes.per.second",
        "the cleaner is not throttled",
    ),
    (
        "inter.broker.protocol.version",
        "Strata's brokers speak one version",
    ),
    ("delete.topic.enable", "topics can always be deleted"),
    // Groups, offsets, transactions.
    ("group.max.size", "not enforced"),
    (
        "group.coordinator.rebalance.protocols",
        "both group protocols are served",
    ),
    (
        "group.consumer.assignors",
        "the uniform and range assignors are served",
    ),
    (
        "offsets.commit.timeout.ms",
        "commits wait for replication up to the request",
    ),
    ("offsets.load.buffer.size", "replays read whole batches"),
    (
        "offsets.topic.segment.bytes",
        "__consumer_offsets takes the log defaults",
    ),
    (
        "offsets.topic.compression.codec",
        "commits are written uncompressed",
    ),
    (
        "offsets.retention.check.interval.ms",
        "expiry runs with the group ticks",
    ),
    (
        "transaction.state.log.segment.bytes",
        "the topic gets 100 MiB segments",
    ),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "timeouts are checked every second",
    ),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "expiry is checked every second",
    ),
    // Metrics.
    ("auto.include.jmx.reporter", "no JMX"),
    ("metric.reporters", "no JMX"),
    ("kafka.metrics.reporters", "no JMX"),
    ("metrics.num.samples", "no JMX"),
    ("metrics.recording.level", "no JMX"),
    ("metrics.sample.window.ms", "no JMX"),
];

/// A property no part of Strata knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProperty {
    /// The name as given.
    pub key: String,
    /// The nearest known name, when it is near enough to be a likely typo.
    pub suggestion: Option<&'static str>,
}

impl std::fmt::Display for UnknownProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown property {} is ignored", self.key)?;
        if let Some(suggestion) = self.suggestion {
            write!(f, "; did you mean {suggestion}?")?;
        }
        Ok(())
    }
}

/// The properties of `props` that Strata does not know, each with a suggestion if a known
/// name is a few edits away, in key order.
pub fn unknown_properties(props: &BTreeMap<String, String>) -> Vec<UnknownProperty> {
    props
        .keys()
        .filter(|key| !is_known(key))
        .map(|key| UnknownProperty {
            key: key.clone(),
            suggestion: suggest(key),
        })
        .collect()
}

/// Whether Strata applies, checks or deliberately ignores `key`.
pub(super) fn is_known(key: &str) -> bool {
    known_names().any(|name| name == key) || unserved::covers(key)
}

fn known_names() -> impl Iterator<Item = &'static str> {
    APPLIED_PROPERTIES
        .iter()
        .copied()
        .chain(TOPIC_DEFAULT_PROPERTIES.iter().map(|(name, _, _)| *name))
        .chain(
            TOPIC_SYNONYMS
                .iter()
                .flat_map(|(_, s)| s.iter().map(|(name, _)| *name)),
        )
        .chain(IGNORED.iter().map(|(name, _)| *name))
        .chain(unserved::NAMES.iter().copied())
}

/// The known name nearest `key` by Damerau-Levenshtein distance, if within a fifth of the
/// name's length (at least 2 edits): `log.retension.hours` gets `log.retention.hours`.
fn suggest(key: &str) -> Option<&'static str> {
    let limit = (key.len() / 5).max(2);
    known_names()
        .map(|name| (strsim::damerau_levenshtein(key, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), "1".to_owned()))
            .collect()
    }

    #[test]
    fn a_misspelled_key_is_reported_with_the_nearest_known_name() {
        let unknown = unknown_properties(&props(&[
            "log.retension.hours",
            "num.partition",
            "log_dirs",
            "num.partitions",
        ]));
        let found: Vec<_> = unknown
            .iter()
            .map(|u| (u.key.as_str(), u.suggestion))
            .collect();
        assert_eq!(
            found,
            [
                ("log.retension.hours", Some("log.retention.hours")),
                ("log_dirs", Some("log.dirs")),
                ("num.partition", Some("num.partitions")),
            ]
        );
        assert_eq!(
            unknown[0].to_string(),
            "unknown property log.retension.hours is ignored; did you mean log.retention.hours?"
        );
    }

    #[test]
    fn a_key_far_from_every_known_name_gets_no_suggestion() {
        let unknown = unknown_properties(&props(&["frobnicate.widgets"]));
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].suggestion, None);
        assert_eq!(
            unknown[0].to_string(),
            "unknown property frobnicate.widgets is ignored"
        );
    }

    #[test]
    fn applied_topic_default_ignored_and_checked_keys_are_known() {
        let keys = [
            "node.id",
            "broker.id",
            "log.dir",
            "advertised.listeners",
            "log.retention.hours",
            "num.network.threads",
            "transaction.state.log.replication.factor",
            "listener.security.protocol.map",
            "security.inter.broker.protocol",
            "ssl.protocol",
            "sasl.mechanism.inter.broker.protocol",
        ];
        assert_eq!(unknown_properties(&props(&keys)), []);
    }

    /// A key that gets an arm must leave `IGNORED`, or the README and the code disagree.
    #[test]
    fn no_property_is_both_applied_and_ignored() {
        for (name, _) in IGNORED {
            assert!(
                !APPLIED_PROPERTIES.contains(name)
                    && !TOPIC_DEFAULT_PROPERTIES.iter().any(|(p, _, _)| p == name)
                    && !TOPIC_SYNONYMS
                        .iter()
                        .any(|(_, s)| s.iter().any(|(p, _)| p == name)),
                "{name} is applied: remove it from IGNORED"
            );
        }
    }

    /// Every name the macro lists reaches an arm: probing it with an empty value either
    /// applies or refuses the value, never falls through.
    #[test]
    fn every_listed_name_has_an_arm() {
        assert!(APPLIED_PROPERTIES.len() > 30);
        for name in APPLIED_PROPERTIES {
            let mut config = super::super::BrokerConfig::default();
            assert!(
                !matches!(config.apply_one(name, ""), Ok(false)),
                "{name} fell through"
            );
        }
    }
}

//! Kafka's rules for names and replica assignments, as pure checks on the image.

use std::collections::BTreeSet;

use crate::error::Rejection;
use crate::image::MetadataImage;

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// The internal topics Kafka itself creates; only these are marked internal.
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Checks Kafka's topic naming rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not
/// `.` or `..`. Violations are [`Rejection::InvalidTopicName`].
pub fn validate_topic_name(name: &str) -> Result<(), Rejection> {
    let invalid = |reason: String| Rejection::InvalidTopicName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("Topic name is illegal, it can't be empty".into()));
    }
    if name == "." || name == ".." {
        return Err(invalid("Topic name cannot be \".\" or \"..\"".into()));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters"
        )));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "Topic name is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `name` is one of Kafka's internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Checks replica lists for `topic`: at least one list; each non-empty, without
/// duplicates, naming only registered brokers; all of length `expected_len` (or of the
/// first list's length when `None`). Returns the common length.
pub(crate) fn validate_assignments(
    image: &MetadataImage,
    topic: &str,
    assignments: &[Vec<i32>],
    expected_len: Option<usize>,
) -> Result<usize, Rejection> {
    let invalid = |reason: String| Rejection::InvalidReplicaAssignment {
        topic: topic.to_owned(),
        reason,
    };
    let Some(first) = assignments.first() else {
        return Err(Rejection::InvalidPartitions {
            topic: topic.to_owned(),
            reason: "Number of partitions must be at least 1.".into(),
        });
    };
    let width = expected_len.unwrap_or(first.len());
    for (index, replicas) in assignments.iter().enumerate() {
        if replicas.is_empty() {
            return Err(invalid(format!(
                "The manual partition assignment for partition index {index} is empty."
            )));
        }
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if distinct.len() != replicas.len() {
            return Err(invalid(format!(
                "The manual partition assignment for partition index {index} contains duplicate broker ids {replicas:?}."
            )));
        }
        if let Some(missing) = replicas.iter().find(|id| image.broker(**id).is_none()) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {missing}, but no such broker is registered."
            )));
        }
        if replicas.len() != width {
            return Err(invalid(format!(
                "The manual partition assignment for partition index {index} has {} replicas, but {width} are expected (inconsistent replication factor).",
                replicas.len()
            )));
        }
    }
    Ok(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_pass() {
        for name in [
            "a",
            "topic-1",
            "a.b_c",
            "__consumer_offsets",
            &"x".repeat(249),
        ] {
            validate_topic_name(name).unwrap();
        }
    }

    #[test]
    fn illegal_names_are_invalid_topic_exception() {
        for name in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            let err = validate_topic_name(name).unwrap_err();
            assert_eq!(err.kafka_error().code(), 17, "{name:?}");
        }
    }

    #[test]
    fn only_two_double_underscore_names_are_internal() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(is_internal_topic("__transaction_state"));
        assert!(!is_internal_topic("__other"));
    }
}

//! Kafka's feature flags (KIP-584): the features Strata supports, the levels it starts a
//! cluster at, and the rules of UpdateFeatures as Kafka 4's `FeatureControlManager` applies
//! them. Finalized levels live in the metadata image, so every node agrees on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Rejection;

/// `metadata.version`, the feature that names the metadata format.
pub const METADATA_VERSION: &str = "metadata.version";

/// `kraft.version`, the format of the metadata quorum's voter set (KIP-853).
pub const KRAFT_VERSION: &str = "kraft.version";

/// The finalized `kraft.version` of every Strata cluster: 1, KIP-853's dynamic voter set.
/// Strata's voters always live in the Raft log and change through AddRaftVoter and
/// RemoveRaftVoter, so level 0 (Kafka's static `controller.quorum.voters`) never describes a
/// Strata quorum and UpdateFeatures cannot move it there.
pub const KRAFT_VERSION_LEVEL: i16 = 1;

/// A feature this build supports: the level range it can run at and the level a new cluster
/// starts at (0: not finalized).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedFeature {
    /// Kafka's feature name.
    pub name: &'static str,
    /// Lowest supported level.
    pub min: i16,
    /// Highest supported level.
    pub max: i16,
    /// The level of a cluster that never changed it.
    pub default: i16,
}

/// The features Strata supports. `metadata.version` spans Kafka 4.0's range (3.3-IV3, 7, to
/// 4.0-IV3, 25): Strata's metadata format does not depend on it, so every level in the range
/// describes it. `group.version` 1 is KIP-848's consumer protocol, which Strata cannot turn
/// off. `kraft.version` is finalized at 1 ([`KRAFT_VERSION_LEVEL`]: the voter set is dynamic,
/// KIP-853) and supported from 0 as in Kafka, whose nodes of a static quorum run at 0;
/// `transaction.version` 2 is KIP-890 part 2: clients that see it end every transaction with
/// an epoch bump (EndTxn v5) and add partitions through Produce v12 and TxnOffsetCommit v5. A
/// new cluster starts at 0 (Kafka 4.0 starts at 2): an operator turns it on with
/// UpdateFeatures (`kafka-features.sh upgrade`) until the three-node case is proven as well
/// as the classic protocol, which the broker serves at every level; `eligible.leader.replicas.version` 0 means no ELR (KIP-966).
pub const SUPPORTED_FEATURES: &[SupportedFeature] = &[
    SupportedFeature {
        name: METADATA_VERSION,
        min: 7,
        max: 25,
        default: 25,
    },
    SupportedFeature {
        name: KRAFT_VERSION,
        min: 0,
        max: KRAFT_VERSION_LEVEL,
        default: KRAFT_VERSION_LEVEL,
    },
    SupportedFeature {
        name: "transaction.version",
        min: 0,
        max: 2,
        default: 0,
    },
    SupportedFeature {
        name: "group.version",
        min: 1,
        max: 1,
        default: 1,
    },
    SupportedFeature {
        name: "eligible.leader.replicas.version",
        min: 0,
        max: 0,
        default: 0,
    },
];

/// How UpdateFeatures may move a level (Kafka's `FeatureUpdate.UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeType {
    /// Only to the same or a higher level (wire code 1).
    Upgrade,
    /// Down without losing metadata (wire code 2).
    SafeDowngrade,
    /// Down even if metadata is lost (wire code 3).
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The type of wire code `code`; `None` for a code Kafka does not define.
    pub fn from_code(code: i8) -> Option<UpgradeType> {
        match code {
            1 => Some(UpgradeType::Upgrade),
            2 => Some(UpgradeType::SafeDowngrade),
            3 => Some(UpgradeType::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// One requested change: the feature, its new level (0 removes it), and how it may move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUpdate {
    /// Feature name.
    pub feature: String,
    /// New maximum level; 0 takes the feature out of the finalized set.
    pub level: i16,
    /// Upgrade or which kind of downgrade.
    pub upgrade_type: UpgradeType,
}

/// The supported range of `name`, if this build knows the feature.
pub fn supported(name: &str) -> Option<&'static SupportedFeature> {
    SUPPORTED_FEATURES.iter().find(|f| f.name == name)
}

fn invalid(feature: &str, level: i16, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidFeatureUpdate {
        feature: feature.to_owned(),
        level,
        reason: reason.into(),
    }
}

/// Checks `updates` against the finalized levels `current` (a feature absent from it is at
/// level 0), as Kafka's `FeatureControlManager.updateFeature` does; the first refused update
/// refuses them all. Returns the finalized levels after the updates.
pub fn apply_updates(
    current: &BTreeMap<String, i16>,
    updates: &[FeatureUpdate],
) -> Result<BTreeMap<String, i16>, Rejection> {
    let mut next = current.clone();
    for (i, update) in updates.iter().enumerate() {
        let FeatureUpdate {
            feature,
            level,
            upgrade_type,
        } = update;
        let level = *level;
        if updates[..i].iter().any(|u| &u.feature == feature) {
            return Err(invalid(feature, level, "The feature is updated twice."));
        }
        let now = current.get(feature).copied().unwrap_or(0);
        if level < 0 {
            return Err(invalid(
                feature,
                level,
                "A feature version cannot be less than 0.",
            ));
        }
        if level > now && *upgrade_type != UpgradeType::Upgrade {
            return Err(invalid(
                feature,
                level,
                "Can't downgrade to a newer version.",
            ));
        }
        if level < now && *upgrade_type == UpgradeType::Upgrade {
            return Err(invalid(
                feature,
                level,
                "Can't downgrade the version of this feature without setting the upgrade \
                 type to either safe or unsafe downgrade.",
            ));
        }
        if feature == KRAFT_VERSION && level != KRAFT_VERSION_LEVEL {
            return Err(invalid(
                feature,
                level,
                "The voter set is dynamic (KIP-853) and cannot be made static.",
            ));
        }
        match supported(feature) {
            None if level != 0 => {
                return Err(invalid(
                    feature,
                    level,
                    "The controller does not support this feature.",
                ))
            }
            Some(s) if level != 0 && !(s.min..=s.max).contains(&level) => {
                return Err(invalid(
                    feature,
                    level,
                    format!(
                        "The controller only supports versions [{}-{}].",
                        s.min, s.max
                    ),
                ))
            }
            Some(s) if level == 0 && s.min > 0 => {
                return Err(invalid(
                    feature,
                    level,
                    format!(
                        "The controller only supports versions [{}-{}].",
                        s.min, s.max
                    ),
                ))
            }
            _ => {}
        }
        if feature == METADATA_VERSION && level < now {
            // Kafka refuses both kinds of metadata.version downgrade in 4.x whenever the
            // metadata format changed in between, which it has between any two levels of
            // the supported range that a client could pick.
            let reason = match upgrade_type {
                UpgradeType::UnsafeDowngrade => {
                    "Unsafe metadata downgrade is not supported in this version."
                }
                _ => {
                    "Refusing to perform the requested downgrade because it might delete \
                     metadata information."
                }
            };
            return Err(invalid(feature, level, reason));
        }
        if level == 0 {
            next.remove(feature);
        } else {
            next.insert(feature.clone(), level);
        }
    }
    Ok(next)
}

/// The finalized levels of a new cluster: every supported feature with a non-zero default
/// (`kraft.version` among them, at [`KRAFT_VERSION_LEVEL`]).
pub fn initial_levels() -> BTreeMap<String, i16> {
    SUPPORTED_FEATURES
        .iter()
        .filter(|f| f.default > 0)
        .map(|f| (f.name.to_owned(), f.default))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(feature: &str, level: i16, upgrade_type: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            feature: feature.to_owned(),
            level,
            upgrade_type,
        }
    }

    #[test]
    fn levels_move_within_the_supported_range_and_the_upgrade_type() {
        let current = initial_levels();
        assert_eq!(current.get(METADATA_VERSION), Some(&25));
        assert_eq!(current.get("group.version"), Some(&1));
        assert_eq!(current.get(KRAFT_VERSION), Some(&KRAFT_VERSION_LEVEL));
        // Same level: a no-op, allowed.
        let same = apply_updates(
            &current,
            &[update(METADATA_VERSION, 25, UpgradeType::Upgrade)],
        )
        .unwrap();
        assert_eq!(same, current);
        for refused in [
            update(METADATA_VERSION, 26, UpgradeType::Upgrade),
            update(METADATA_VERSION, 24, UpgradeType::Upgrade),
            update(METADATA_VERSION, 24, UpgradeType::SafeDowngrade),
            update(METADATA_VERSION, 24, UpgradeType::UnsafeDowngrade),
            update("transaction.version", 3, UpgradeType::Upgrade),
            update("group.version", 0, UpgradeType::SafeDowngrade),
            update("no.such.feature", 1, UpgradeType::Upgrade),
            update("kraft.version", -1, UpgradeType::SafeDowngrade),
            update("kraft.version", 0, UpgradeType::SafeDowngrade),
            update("kraft.version", 0, UpgradeType::UnsafeDowngrade),
        ] {
            let err = apply_updates(&current, std::slice::from_ref(&refused)).unwrap_err();
            assert_eq!(
                err.kafka_error(),
                kafka_protocol::error::ResponseError::InvalidUpdateVersion,
                "{refused:?}"
            );
        }
        // A feature at level 0 stays removable; an unknown one may be "deleted".
        assert!(apply_updates(
            &current,
            &[update("no.such.feature", 0, UpgradeType::SafeDowngrade)]
        )
        .is_ok());
        // All or nothing: one bad update refuses the good one too.
        assert!(apply_updates(
            &current,
            &[
                update(METADATA_VERSION, 25, UpgradeType::Upgrade),
                update(METADATA_VERSION, 25, UpgradeType::Upgrade),
            ]
        )
        .is_err());
    }
}

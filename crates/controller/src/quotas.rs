//! Client quotas (Kafka's `/config/users/...` and `/config/clients/...` entities, KIP-546):
//! the entity and key types the metadata image stores, and the validation Kafka's
//! `ClientQuotaControlManager` applies to an alteration.
//!
//! A quota entity names a user, a client id, or both; either part may be the default
//! (Kafka's `<default>`, a null name on the wire). IP entities (`connection_creation_rate`)
//! are not served.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Rejection;

/// One part of a quota entity: a named user or client id, or the default one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    /// Kafka's `<default>` (a null entity name on the wire).
    Default,
    /// A particular user (the principal's name) or client id; never empty.
    Named(String),
}

impl EntityName {
    /// The wire form: `None` for the default.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(name) => Some(name),
        }
    }

    /// From the wire form (`None` is the default).
    pub fn from_wire(name: Option<&str>) -> EntityName {
        name.map_or(EntityName::Default, |n| EntityName::Named(n.to_owned()))
    }
}

/// Kafka's entity type names.
pub const USER: &str = "user";
/// Kafka's entity type names.
pub const CLIENT_ID: &str = "client-id";
/// Kafka's entity type names (not served by Strata).
pub const IP: &str = "ip";

/// A client quota entity: a user, a client id, or a user and a client id (Kafka's
/// `ClientQuotaEntity` without IP). At least one part is present in a stored entity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The user part, if the entity has one.
    pub user: Option<EntityName>,
    /// The client-id part, if the entity has one.
    pub client_id: Option<EntityName>,
}

impl QuotaEntity {
    /// The entity's parts as Kafka's (entity type, entity name) pairs, user first.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut parts = Vec::with_capacity(2);
        if let Some(user) = &self.user {
            parts.push((USER, user.as_wire()));
        }
        if let Some(client) = &self.client_id {
            parts.push((CLIENT_ID, client.as_wire()));
        }
        parts
    }

    /// Builds an entity from Kafka's (entity type, entity name) pairs, refusing what Kafka's
    /// controller refuses: no parts, a repeated type, an unknown type, an empty name. IP
    /// entities are refused too (Strata does not serve them).
    pub fn from_parts<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, Rejection> {
        let mut entity = QuotaEntity {
            user: None,
            client_id: None,
        };
        let mut any = false;
        for (kind, name) in parts {
            any = true;
            let slot = match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => return Err(invalid("IP quota entities are not supported by Strata")),
                other => {
                    return Err(invalid(&format!(
                        "Unhandled client quota entity type: {other}"
                    )))
                }
            };
            if slot.is_some() {
                return Err(invalid(&format!(
                    "Invalid empty client quota entity, duplicate entity entry {kind}"
                )));
            }
            if name == Some("") {
                return Err(invalid(&format!("Empty {kind} not supported")));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if !any {
            return Err(invalid("Invalid empty client quota entity"));
        }
        Ok(entity)
    }
}

impl fmt::Display for QuotaEntity {
    /// Kafka's `ClientQuotaEntity` rendering, e.g. `(user=alice, client-id=<default>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .parts()
            .into_iter()
            .map(|(kind, name)| format!("{kind}={}", name.unwrap_or("<default>")))
            .collect();
        write!(f, "({})", parts.join(", "))
    }
}

/// The quota keys of user and client-id entities, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaKey {
    /// `producer_byte_rate`: produce request bytes per second (a Long).
    ProducerByteRate,
    /// `consumer_byte_rate`: fetch response bytes per second (a Long).
    ConsumerByteRate,
    /// `request_percentage`: percent of one request thread's time per second (a Double).
    RequestPercentage,
    /// `controller_mutation_rate`: partition mutations per second (a Double).
    ControllerMutationRate,
}

impl QuotaKey {
    /// Every key, in Kafka's order.
    pub const ALL: [QuotaKey; 4] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
    ];

    /// Kafka's name of the key.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
            QuotaKey::ControllerMutationRate => "controller_mutation_rate",
        }
    }

    /// The key named `name`.
    pub fn from_name(name: &str) -> Option<QuotaKey> {
        QuotaKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether Kafka types the key as a Long (its values must be whole numbers).
    pub fn is_long(self) -> bool {
        matches!(
            self,
            QuotaKey::ProducerByteRate | QuotaKey::ConsumerByteRate
        )
    }
}

/// Checks one entity's alteration as Kafka's `ClientQuotaControlManager` does: every key
/// known (INVALID_REQUEST "Invalid configuration key"), Long keys whole numbers (within
/// 1e-6). Values must also be finite, so the metadata log can store them. Removals are
/// not checked (removing an unset key is a no-op, as in Kafka).
pub fn check_alteration(changes: &BTreeMap<String, Option<f64>>) -> Result<(), Rejection> {
    for (key, value) in changes {
        let Some(value) = value else { continue };
        let Some(quota_key) = QuotaKey::from_name(key) else {
            return Err(invalid(&format!("Invalid configuration key {key}")));
        };
        if !value.is_finite() {
            return Err(invalid(&format!(
                "Configuration {key} must be a finite number"
            )));
        }
        if quota_key.is_long() {
            let epsilon = 1e-6;
            if ((value + epsilon).trunc() - value).abs() > epsilon {
                return Err(invalid(&format!(
                    "Configuration {key} must be a Long value"
                )));
            }
        }
    }
    Ok(())
}

fn invalid(reason: &str) -> Rejection {
    Rejection::InvalidClientQuota {
        reason: reason.to_owned(),
    }
}

/// Serializes a map with a structured key as a list of pairs (JSON object keys must be
/// strings).
pub(crate) mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the map as `[[key, value], ...]`.
    pub(crate) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    /// Reads `[[key, value], ...]`.
    pub(crate) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn entities_are_built_as_kafka_validates_them() {
        let both = QuotaEntity::from_parts([(CLIENT_ID, None), (USER, Some("alice"))]).unwrap();
        assert_eq!(both.user, Some(EntityName::Named("alice".into())));
        assert_eq!(both.client_id, Some(EntityName::Default));
        assert_eq!(both.to_string(), "(user=alice, client-id=<default>)");
        for bad in [
            vec![],
            vec![(USER, Some("a")), (USER, Some("b"))],
            vec![("group", Some("g"))],
            vec![(USER, Some(""))],
            vec![(IP, Some("127.0.0.1"))],
        ] {
            let err = QuotaEntity::from_parts(bad.clone()).unwrap_err();
            assert_eq!(
                err.kafka_error(),
                kafka_protocol::error::ResponseError::InvalidRequest,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alterations_refuse_unknown_keys_fractional_longs_and_non_finite_values() {
        assert!(check_alteration(&changes(&[
            ("producer_byte_rate", Some(1048576.0)),
            ("request_percentage", Some(12.5)),
            ("consumer_byte_rate", None),
            ("no_such_key", None),
        ]))
        .is_ok());
        for bad in [
            ("no_such_key", Some(1.0)),
            ("producer_byte_rate", Some(1.5)),
            ("consumer_byte_rate", Some(f64::INFINITY)),
            ("request_percentage", Some(f64::NAN)),
        ] {
            let err = check_alteration(&changes(&[bad])).unwrap_err();
            assert!(
                matches!(err, Rejection::InvalidClientQuota { .. }),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_alteration(&changes(&[("bogus", Some(1.0))]))
                .unwrap_err()
                .to_string(),
            "Invalid configuration key bogus"
        );
    }
}

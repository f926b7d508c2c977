//! Applying [`Command::AlterClientQuotas`](crate::Command::AlterClientQuotas).

use std::collections::BTreeMap;

use super::MetadataImage;
use crate::command::Applied;
use crate::error::Rejection;
use crate::quotas::{check_alteration, QuotaEntity};

impl MetadataImage {
    /// Sets and removes `entity`'s quota values, all or nothing.
    pub(super) fn alter_client_quotas(
        &mut self,
        entity: &QuotaEntity,
        changes: &BTreeMap<String, Option<f64>>,
    ) -> Result<Applied, Rejection> {
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(Rejection::InvalidClientQuota {
                reason: "Invalid empty client quota entity".to_owned(),
            });
        }
        check_alteration(changes)?;
        let values = self.client_quotas.entry(entity.clone()).or_default();
        for (key, value) in changes {
            match value {
                Some(value) => {
                    values.insert(key.clone(), *value);
                }
                None => {
                    values.remove(key);
                }
            }
        }
        if values.is_empty() {
            self.client_quotas.remove(entity);
        }
        Ok(Applied::Done)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::quotas::{EntityName, QuotaEntity};
    use crate::{Command, MetadataImage, Rejection};

    fn alter(entity: &QuotaEntity, pairs: &[(&str, Option<f64>)]) -> Command {
        Command::AlterClientQuotas {
            entity: entity.clone(),
            changes: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn quotas_are_set_removed_and_survive_a_snapshot_round_trip() {
        let mut image = MetadataImage::new();
        let client = QuotaEntity {
            user: None,
            client_id: Some(EntityName::Named("x".into())),
        };
        let default_user = QuotaEntity {
            user: Some(EntityName::Default),
            client_id: Some(EntityName::Default),
        };
        image
            .apply(&alter(&client, &[("producer_byte_rate", Some(1024.0))]))
            .unwrap();
        image
            .apply(&alter(&default_user, &[("request_percentage", Some(25.5))]))
            .unwrap();
        let json = serde_json::to_string(&image).unwrap();
        let read: MetadataImage = serde_json::from_str(&json).unwrap();
        assert_eq!(read, image);
        assert_eq!(
            read.client_quota(&default_user),
            Some(&BTreeMap::from([("request_percentage".to_owned(), 25.5)]))
        );
        image
            .apply(&alter(&client, &[("producer_byte_rate", None)]))
            .unwrap();
        assert_eq!(image.client_quota(&client), None);
        assert_eq!(image.client_quotas().count(), 1);
    }

    #[test]
    fn a_refused_alteration_changes_nothing() {
        let mut image = MetadataImage::new();
        let client = QuotaEntity {
            user: None,
            client_id: Some(EntityName::Named("x".into())),
        };
        let before = image.clone();
        let refused = image.apply(&alter(
            &client,
            &[("producer_byte_rate", Some(10.0)), ("bogus", Some(1.0))],
        ));
        assert!(matches!(refused, Err(Rejection::InvalidClientQuota { .. })));
        assert_eq!(image, before);
    }
}

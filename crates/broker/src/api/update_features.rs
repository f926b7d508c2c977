//! UpdateFeatures (key 57): set finalized feature levels in the metadata quorum, as Kafka 4's
//! controller does: all updates or none, each level within what Strata supports
//! (`controller::features::SUPPORTED_FEATURES`) and moving only as its upgrade type allows,
//! INVALID_UPDATE_VERSION otherwise. `validate_only` checks against the current image and
//! changes nothing. The answer is one top-level error; per-feature results (all NONE) are
//! listed only on success before v2, as in Kafka.

use controller::features::{FeatureUpdate, UpgradeType};
use controller::Command;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};

use super::create_topics::Rejected;
use super::{owned, str_bytes, Ctx};

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    let result = update(ctx, &request).await;
    let mut response = UpdateFeaturesResponse::default();
    match result {
        Ok(()) => {
            if ctx.version <= 1 {
                response.results = request
                    .feature_updates
                    .iter()
                    .map(|u| UpdatableFeatureResult::default().with_feature(u.feature.clone()))
                    .collect();
            }
        }
        Err(rejected) => {
            response = response
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message)));
        }
    }
    response
}

async fn update(ctx: &Ctx<'_>, request: &UpdateFeaturesRequest) -> Result<(), Rejected> {
    super::check_cluster(ctx, controller::acl::AclOperation::Alter)
        .map_err(|denied| Rejected::new(denied, "Authorization failed."))?;
    let mut updates = Vec::with_capacity(request.feature_updates.len());
    for u in &request.feature_updates {
        let feature = owned(&u.feature);
        // v0 has a downgrade flag where later versions have the upgrade type.
        let code = match (ctx.version, u.allow_downgrade) {
            (0, true) => 2,
            (0, false) => 1,
            _ => u.upgrade_type,
        };
        let Some(upgrade_type) = UpgradeType::from_code(code) else {
            return Err(Rejected::new(
                ResponseError::InvalidUpdateVersion,
                format!(
                    "Invalid update version {} for feature {feature}. The controller does not \
                     support the given upgrade type.",
                    u.max_version_level
                ),
            ));
        };
        updates.push(FeatureUpdate {
            feature,
            level: u.max_version_level,
            upgrade_type,
        });
    }
    if request.validate_only {
        let current = ctx.broker.image().finalized_features();
        return controller::features::apply_updates(&current, &updates)
            .map(|_| ())
            .map_err(Rejected::from);
    }
    ctx.broker
        .submit(Command::UpdateFeatures { updates })
        .await
        .map(|_| ())
        .map_err(Rejected::from)
}

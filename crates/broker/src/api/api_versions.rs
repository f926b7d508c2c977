//! ApiVersions (key 18): the APIs and versions this broker serves and, from v3, the
//! features it supports (from v4 also those whose range starts at 0, KIP-1022) and the levels
//! finalized in the metadata image (KIP-584), with the image's applied index as the finalized
//! features' epoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{str_bytes, Ctx, SUPPORTED};

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

pub(super) fn handle(ctx: &Ctx<'_>, _request: ApiVersionsRequest) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default().with_api_keys(api_list());
    if ctx.version < 3 {
        return response;
    }
    // KIP-1022: a supported range starting at 0 goes only to v4+ clients; older ones refuse
    // it (Kafka leaves those features out of v3 answers the same way).
    let supported = controller::features::SUPPORTED_FEATURES
        .iter()
        .filter(|f| ctx.version >= 4 || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(str_bytes(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let image = ctx.broker.image();
    let finalized = image
        .finalized_features()
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(str_bytes(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    response
        .with_supported_features(supported)
        .with_finalized_features(finalized)
        .with_finalized_features_epoch(i64::try_from(image.applied_index()).unwrap_or(i64::MAX))
}

/// The KIP-511 answer to a version we do not know: a v0 body with UNSUPPORTED_VERSION and our
/// list, so the client retries with a version it finds there.
pub(super) fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list())
}

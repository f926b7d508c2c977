//! DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), KIP-546: client quotas of
//! user and client-id entities (a null name is the default entity), stored in the metadata
//! image. Errors are Kafka's: a bad filter fails the whole describe, a bad entity or key
//! fails that entity's entry only.

use std::collections::BTreeMap;

use controller::quotas::{check_alteration, QuotaEntity, CLIENT_ID, IP, USER};
use controller::Command;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    alter_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::Rejected;
use super::{str_bytes, Ctx};

/// Kafka's match types of a filter component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// A parsed describe filter: entity types that must have exactly this name (`None`: the
/// default), and entity types that must merely be present.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    exact: BTreeMap<String, Option<String>>,
    present: Vec<String>,
    strict: bool,
}

impl Filter {
    /// Kafka's `ClientQuotasImage.describe` checks, in its order and with its messages.
    fn parse(components: &[ComponentData], strict: bool) -> Result<Filter, Rejected> {
        let invalid = |m: String| Rejected::new(ResponseError::InvalidRequest, m);
        let mut filter = Filter {
            strict,
            ..Filter::default()
        };
        for c in components {
            let kind = c.entity_type.as_str();
            if kind.is_empty() {
                return Err(invalid("Invalid empty entity type.".into()));
            }
            if filter.exact.contains_key(kind) || filter.present.iter().any(|p| p == kind) {
                return Err(invalid(format!(
                    "Entity type {kind} cannot appear more than once in the filter."
                )));
            }
            if ![USER, CLIENT_ID, IP].contains(&kind) {
                return Err(Rejected::new(
                    ResponseError::UnsupportedVersion,
                    format!("Unsupported entity type {kind}"),
                ));
            }
            let name = c._match.as_ref().map(|m| m.as_str().to_owned());
            match (c.match_type, name) {
                (MATCH_EXACT, None) => {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                    ))
                }
                (MATCH_EXACT, name) => {
                    filter.exact.insert(kind.to_owned(), name);
                }
                (MATCH_DEFAULT, Some(_)) => {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                            .into(),
                    ))
                }
                (MATCH_DEFAULT, None) => {
                    filter.exact.insert(kind.to_owned(), None);
                }
                (MATCH_SPECIFIED, Some(_)) => return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                )),
                (MATCH_SPECIFIED, None) => filter.present.push(kind.to_owned()),
                (other, _) => {
                    return Err(Rejected::new(
                        ResponseError::UnsupportedVersion,
                        format!("Unknown match type {other}"),
                    ))
                }
            }
        }
        let has = |k: &str| filter.exact.contains_key(k) || filter.present.iter().any(|p| p == k);
        if has(IP) && (has(USER) || has(CLIENT_ID)) {
            return Err(invalid(
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into(),
            ));
        }
        Ok(filter)
    }

    /// Whether `entity` passes (Kafka's `ClientQuotasImage.matches`).
    fn matches(&self, entity: &QuotaEntity) -> bool {
        let parts = entity.parts();
        if self.strict && parts.len() != self.exact.len() + self.present.len() {
            return false;
        }
        let part = |kind: &str| parts.iter().find(|(k, _)| *k == kind).map(|(_, n)| *n);
        self.exact
            .iter()
            .all(|(kind, name)| part(kind) == Some(name.as_deref()))
            && self.present.iter().all(|kind| part(kind).is_some())
    }
}

pub(super) fn describe(
    ctx: &Ctx<'_>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let filter = match Filter::parse(&request.components, request.strict) {
        Ok(filter) => filter,
        Err(rejected) => {
            return DescribeClientQuotasResponse::default()
                .with_error_code(rejected.error.code())
                .with_error_message(Some(StrBytes::from_string(rejected.message)))
                .with_entries(None)
        }
    };
    let image = ctx.broker.image();
    let entries = image
        .client_quotas()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .parts()
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(kind))
                                .with_entity_name(name.map(str_bytes))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(str_bytes(key.as_str()))
                                .with_value(*value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

pub(super) async fn alter(
    ctx: &Ctx<'_>,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let mut seen: Vec<QuotaEntity> = Vec::new();
    let mut results = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        let parts: Vec<(&str, Option<&str>)> = entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref()))
            .collect();
        let outcome = async {
            let entity = QuotaEntity::from_parts(parts.iter().copied())?;
            let mut changes: BTreeMap<String, Option<f64>> = BTreeMap::new();
            for op in &entry.ops {
                let key = op.key.as_str().to_owned();
                if changes.contains_key(&key) {
                    return Err(Rejected::new(
                        ResponseError::InvalidRequest,
                        format!(
                            "Duplicate quota key {key} not updating quota for this entity {entity}"
                        ),
                    ));
                }
                changes.insert(key, (!op.remove).then_some(op.value));
            }
            if seen.contains(&entity) {
                return Err(Rejected::new(
                    ResponseError::InvalidRequest,
                    format!("Ignoring duplicate entity {entity}"),
                ));
            }
            seen.push(entity.clone());
            check_alteration(&changes)?;
            if request.validate_only || changes.is_empty() {
                return Ok(());
            }
            ctx.broker
                .submit(Command::AlterClientQuotas { entity, changes })
                .await
                .map(|_| ())
                .map_err(Rejected::from)
        }
        .await;
        let (code, message) = match outcome {
            Ok(()) => (0, None),
            Err(r) => (r.error.code(), Some(StrBytes::from_string(r.message))),
        };
        results.push(
            alter_client_quotas_response::EntryData::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(
                    entry
                        .entity
                        .iter()
                        .map(|e| {
                            alter_client_quotas_response::EntityData::default()
                                .with_entity_type(e.entity_type.clone())
                                .with_entity_name(e.entity_name.clone())
                        })
                        .collect(),
                ),
        );
    }
    AlterClientQuotasResponse::default().with_entries(results)
}

#[cfg(test)]
mod tests {
    use controller::quotas::EntityName;

    use super::*;

    fn component(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(str_bytes(kind))
            .with_match_type(match_type)
            .with_match(name.map(str_bytes))
    }

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
        }
    }

    #[test]
    fn filters_match_as_kafkas_image_does() {
        let alice_app = entity(Some(Some("alice")), Some(Some("app")));
        let alice = entity(Some(Some("alice")), None);
        let default_user = entity(Some(None), None);
        let app = entity(None, Some(Some("app")));

        let f = Filter::parse(&[component(USER, MATCH_EXACT, Some("alice"))], false).unwrap();
        assert!(f.matches(&alice_app) && f.matches(&alice));
        assert!(!f.matches(&default_user) && !f.matches(&app));

        let f = Filter::parse(&[component(USER, MATCH_EXACT, Some("alice"))], true).unwrap();
        assert!(!f.matches(&alice_app) && f.matches(&alice));

        let f = Filter::parse(&[component(USER, MATCH_DEFAULT, None)], false).unwrap();
        assert!(f.matches(&default_user) && !f.matches(&alice));

        let f = Filter::parse(&[component(USER, MATCH_SPECIFIED, None)], true).unwrap();
        assert!(f.matches(&alice) && f.matches(&default_user) && !f.matches(&alice_app));

        let f = Filter::parse(&[], false).unwrap();
        assert!([&alice_app, &alice, &default_user, &app]
            .iter()
            .all(|e| f.matches(e)));
    }

    #[test]
    fn bad_filters_get_kafkas_errors() {
        let error =
            |components: &[ComponentData]| Filter::parse(components, false).unwrap_err().error;
        assert_eq!(
            error(&[component(USER, MATCH_EXACT, None)]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            error(&[component(USER, MATCH_DEFAULT, Some("a"))]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            error(&[
                component(USER, MATCH_SPECIFIED, None),
                component(USER, MATCH_DEFAULT, None)
            ]),
            ResponseError::InvalidRequest
        );
        assert_eq!(
            error(&[component("group", MATCH_SPECIFIED, None)]),
            ResponseError::UnsupportedVersion
        );
        assert_eq!(
            error(&[component(USER, 7, None)]),
            ResponseError::UnsupportedVersion
        );
        assert_eq!(
            error(&[
                component(IP, MATCH_SPECIFIED, None),
                component(USER, MATCH_SPECIFIED, None)
            ]),
            ResponseError::InvalidRequest
        );
    }
}

//! DescribeConfigs (key 32): a topic's effective configs with their sources, or a broker's.

use controller::MetadataImage;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{owned, str_bytes, Ctx};
use crate::config::dynamic::{
    broker_key, broker_synonyms, catalog, is_dynamic, BrokerKey, Layers, Synonym,
};
use crate::config::BrokerConfig;
use crate::topic_config::{self, ConfigSource};

/// Kafka's ConfigResource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Kafka's check of a config resource: `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on the
/// topic, or on the cluster for a broker's configs.
pub(super) fn check_config_access(
    authz: &super::Authz<'_>,
    operation: controller::acl::AclOperation,
    resource_type: i8,
    name: &str,
) -> Result<(), ResponseError> {
    use controller::acl::{ResourceType, CLUSTER_NAME};
    match resource_type {
        RESOURCE_TOPIC => authz.check(operation, ResourceType::Topic, name),
        _ => authz.check(operation, ResourceType::Cluster, CLUSTER_NAME),
    }
}

/// One described config: name, value (`None` for unset or secret), source, synonyms, and
/// whether it is read-only.
struct Described {
    name: String,
    value: Option<String>,
    source: ConfigSource,
    synonyms: Vec<Synonym>,
    read_only: bool,
    key: Option<&'static BrokerKey>,
}

/// The value a broker property has in this process when no layer sets it: what Strata
/// computed (the node id, listeners) or the catalog's default.
fn computed_value(config: &BrokerConfig, key: &BrokerKey) -> Option<String> {
    let join = |f: &dyn Fn(&crate::config::ListenerConfig) -> String| {
        config.listeners.iter().map(f).collect::<Vec<_>>().join(",")
    };
    match key.name {
        "node.id" | "broker.id" => Some(config.node_id.to_string()),
        "log.dirs" => Some(config.data_dir.display().to_string()),
        "listeners" => Some(join(&|l| format!("{}://{}", l.name, l.bind))),
        "advertised.listeners" => Some(join(&|l| {
            format!("{}://{}:{}", l.name, l.advertised.0, l.advertised.1)
        })),
        "listener.security.protocol.map" => {
            Some(join(&|l| format!("{}:{}", l.name, l.protocol.name())))
        }
        "inter.broker.listener.name" => Some(config.inter_broker_listener.clone()),
        _ => key.default.map(str::to_owned),
    }
}

/// Kafka's `createBrokerConfigEntry`: a broker property with its synonyms; for the cluster
/// default (`per_broker` false) only the cluster-default layer counts.
fn broker_entry(
    layers: &Layers<'_>,
    config: &BrokerConfig,
    name: &str,
    per_broker: bool,
) -> Described {
    let key = broker_key(name);
    // Kafka: a property of unknown type (one Strata only accepts, such as `ssl.*`) may
    // be a secret, so it is treated as one.
    let sensitive = key.is_none_or(BrokerKey::sensitive);
    let names = broker_synonyms(name);
    let synonyms: Vec<Synonym> = layers
        .synonyms(name, &names, sensitive)
        .into_iter()
        .filter(|s| per_broker || s.source == ConfigSource::DynamicDefaultBroker)
        .collect();
    let value = if per_broker {
        layers
            .value(name)
            .map(str::to_owned)
            .or_else(|| key.and_then(|k| computed_value(config, k)))
    } else {
        layers.cluster_default.get(name).cloned()
    };
    Described {
        name: name.to_owned(),
        value: if sensitive { None } else { value },
        source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
        synonyms,
        read_only: !is_dynamic(name),
        key,
    }
}

/// The broker resource `name` ("" for the cluster default, else this node's id).
fn broker_entries(
    ctx: &Ctx<'_>,
    image: &MetadataImage,
    name: &str,
) -> Result<Vec<Described>, String> {
    let config = &ctx.broker.config;
    let layers = ctx.broker.config_layers(image);
    if name.is_empty() {
        return Ok(layers
            .cluster_default
            .keys()
            .map(|k| broker_entry(&layers, config, k, false))
            .collect());
    }
    match name.parse::<i32>() {
        Ok(id) if id == config.node_id => {}
        Ok(_) => {
            return Err(format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                config.node_id
            ))
        }
        Err(_) => return Err(format!("Broker id must be an integer, but it is: {name}")),
    }
    let mut names: std::collections::BTreeSet<&str> = catalog().iter().map(|k| k.name).collect();
    // Properties given in the file that the catalog lacks (`ssl.*` and the like).
    names.extend(config.properties.keys().map(String::as_str));
    Ok(names
        .into_iter()
        .map(|k| broker_entry(&layers, config, k, true))
        .collect())
}

fn synonym_results(synonyms: Vec<Synonym>) -> Vec<DescribeConfigsSynonym> {
    synonyms
        .into_iter()
        .map(|s| {
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(s.name))
                .with_value(s.value.map(str_bytes))
                .with_source(s.source as i8)
        })
        .collect()
}

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let image = ctx.broker.image();
    let authz = ctx.authz();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = owned(&resource.resource_name);
            let access = check_config_access(
                &authz,
                controller::acl::AclOperation::DescribeConfigs,
                resource.resource_type,
                &name,
            );
            if let Err(denied) = access {
                return DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(denied.code())
                    .with_error_message(Some(str_bytes("Authorization failed.")));
            }
            let wanted: Option<Vec<String>> = resource
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(owned).collect());
            let keep = |key: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == key));
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let configs: Vec<DescribeConfigsResourceResult> = match resource.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = image.topic(&name) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "topic {name} does not exist"
                            ))));
                    };
                    let defs = controller::topic_config_defs();
                    let layers = ctx.broker.config_layers(&image);
                    topic_config::effective(&layers, &topic.configs)
                        .into_iter()
                        .filter(|(key, _)| keep(key))
                        .map(|(key, value)| {
                            let def = defs.iter().find(|d| d.name == key);
                            let sensitive = def.is_some_and(|d| d.sensitive);
                            let mut entry = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key))
                                .with_value(if sensitive {
                                    None
                                } else {
                                    value.value.map(str_bytes)
                                })
                                .with_config_source(value.source as i8)
                                .with_is_sensitive(sensitive);
                            if request.include_synonyms {
                                entry = entry.with_synonyms(synonym_results(value.synonyms));
                            }
                            if let Some(def) = def {
                                entry = entry.with_config_type(def.kind.describe_type());
                                if request.include_documentation {
                                    entry = entry.with_documentation(Some(str_bytes(def.doc)));
                                }
                            }
                            entry
                        })
                        .collect()
                }
                RESOURCE_BROKER => match broker_entries(ctx, &image, &name) {
                    Ok(entries) => entries
                        .into_iter()
                        .filter(|d| keep(&d.name))
                        .map(|d| {
                            let mut entry = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(d.name))
                                .with_value(d.value.map(str_bytes))
                                .with_read_only(d.read_only)
                                .with_config_source(d.source as i8)
                                .with_is_sensitive(d.key.is_none_or(BrokerKey::sensitive))
                                .with_config_type(d.key.map_or(0, |k| k.kind.describe_type()));
                            if request.include_synonyms {
                                entry = entry.with_synonyms(synonym_results(d.synonyms));
                            }
                            if request.include_documentation {
                                let doc = d.key.and_then(|k| k.doc.clone());
                                entry = entry.with_documentation(doc.map(str_bytes));
                            }
                            entry
                        })
                        .collect(),
                    Err(message) => {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(message)));
                    }
                },
                other => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "resource type {other} is not supported"
                        ))));
                }
            };
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

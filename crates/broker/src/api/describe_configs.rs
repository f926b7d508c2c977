//! DescribeConfigs (key 32): a topic's effective configs with their sources, or a broker's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{owned, str_bytes, Ctx};
use crate::topic_config::{self, ConfigSource};

/// Kafka's ConfigResource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Whether a broker setting holds a secret (Kafka's PASSWORD type: key passwords, private
/// keys, JAAS lines with their users' passwords): described with no value.
fn sensitive_broker_setting(key: &str) -> bool {
    key.ends_with(".password")
        || key.ends_with("sasl.jaas.config")
        || key.ends_with("ssl.keystore.key")
}

/// Broker settings shown for the broker resource, with their values.
fn broker_entries(ctx: &Ctx<'_>) -> Vec<(String, Option<String>, ConfigSource)> {
    let config = &ctx.broker.config;
    let join = |f: &dyn Fn(&crate::config::ListenerConfig) -> String| {
        config.listeners.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let listeners = join(&|l| format!("{}://{}", l.name, l.bind));
    let advertised = join(&|l| format!("{}://{}:{}", l.name, l.advertised.0, l.advertised.1));
    let protocol_map = join(&|l| format!("{}:{}", l.name, l.protocol.name()));
    let builtin = [
        ("node.id", config.node_id.to_string()),
        ("log.dirs", config.data_dir.display().to_string()),
        ("listeners", listeners),
        ("advertised.listeners", advertised),
        ("listener.security.protocol.map", protocol_map),
        (
            "inter.broker.listener.name",
            config.inter_broker_listener.clone(),
        ),
        ("num.partitions", config.num_partitions.to_string()),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
        ),
        (
            "socket.request.max.bytes",
            config.socket_request_max_bytes.to_string(),
        ),
        (
            "log.retention.check.interval.ms",
            config.retention_check_interval_ms.to_string(),
        ),
        (
            "queued.max.requests",
            config.max_in_flight_per_connection.to_string(),
        ),
    ];
    let mut entries: Vec<_> = builtin
        .into_iter()
        .map(|(k, v)| {
            let source = if config.properties.contains_key(k) {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            (k.to_owned(), Some(v), source)
        })
        .collect();
    for (k, v) in &config.properties {
        if !entries.iter().any(|(name, _, _)| name == k) {
            entries.push((k.clone(), Some(v.clone()), ConfigSource::StaticBroker));
        }
    }
    entries
}

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let image = ctx.broker.image();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = owned(&resource.resource_name);
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
                    topic_config::effective(&ctx.broker.config.topic_defaults, &topic.configs)
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
                RESOURCE_BROKER => {
                    if !name.is_empty() && name != ctx.broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(format!(
                                "broker {name} is not this broker"
                            ))));
                    }
                    broker_entries(ctx)
                        .into_iter()
                        .filter(|(key, _, _)| keep(key))
                        .map(|(key, value, source)| {
                            let sensitive = sensitive_broker_setting(&key);
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key))
                                .with_value(value.filter(|_| !sensitive).map(str_bytes))
                                .with_is_sensitive(sensitive)
                                .with_read_only(true)
                                .with_config_source(source as i8)
                                .with_config_type(2)
                        })
                        .collect()
                }
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
